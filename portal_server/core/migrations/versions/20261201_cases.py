"""cases: one-stop handling (办件) and their timeline

Revision ID: 20261201_cases
Revises: 20261201_services_handling
"""
from alembic import op
import sqlalchemy as sa


revision = "20261201_cases"
down_revision = "20261201_services_handling"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=True),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("service_name", sa.String(length=128), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("applicant_name", sa.String(length=32), nullable=False),
        sa.Column("applicant_key", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("desk_level", sa.String(length=12), nullable=False),
        sa.Column("desk_code", sa.String(length=32), nullable=False),
        sa.Column("desk_path", sa.String(length=255), nullable=False),
        sa.Column("deadline", TS, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("materials_json", sa.Text(), nullable=False),
        sa.Column("flags_json", sa.Text(), nullable=False),
        sa.Column("supervised", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=120), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("suspended_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("number"),
        sa.UniqueConstraint("idempotency_key"),
    )
    op.create_index("ix_cases_service_code", "cases", ["service_code"])
    op.create_index("ix_cases_household_id", "cases", ["household_id"])
    op.create_index("ix_cases_applicant_key", "cases", ["applicant_key"])
    op.create_index("ix_cases_desk_path", "cases", ["desk_path"])
    op.create_index("ix_cases_desk_open", "cases", ["desk_code", "status", "deadline"])
    op.create_index("ix_cases_region_status", "cases", ["region_path", "status"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=12), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("desk_code", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_events_case_id", "case_events", ["case_id"])


def downgrade() -> None:
    op.drop_table("case_events")
    op.drop_table("cases")
