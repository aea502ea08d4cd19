"""services: where an item is handled, TV application, subsidy flag; town admission lists (准入清单)

Revision ID: 20261201_services_handling
Revises: 20261122_services
"""
from alembic import op
import sqlalchemy as sa


revision = "20261201_services_handling"
down_revision = "20261122_services"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_items") as b:
        b.add_column(sa.Column("handle_level", sa.String(length=16), nullable=False, server_default="town"))
        b.add_column(sa.Column("department_code", sa.String(length=32), nullable=True))
        b.add_column(sa.Column("tv_apply", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("subsidy", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "service_admissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("town_id", sa.Integer(), nullable=False),
        sa.Column("town_path", sa.String(length=255), nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("admitted_by", sa.String(length=64), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["town_id"], ["regions.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("town_id", "service_code", name="uq_service_admissions_town_item"),
    )
    op.create_index("ix_service_admissions_town_id", "service_admissions", ["town_id"])
    op.create_index("ix_service_admissions_town_path", "service_admissions", ["town_path"])
    op.create_index("ix_service_admissions_service_code", "service_admissions", ["service_code"])


def downgrade() -> None:
    op.drop_table("service_admissions")
    with op.batch_alter_table("service_items") as b:
        b.drop_column("subsidy")
        b.drop_column("tv_apply")
        b.drop_column("department_code")
        b.drop_column("handle_level")
