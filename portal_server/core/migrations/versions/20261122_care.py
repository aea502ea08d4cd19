"""care: check-ins, care tasks, elderly services, speech clips

Revision ID: 20261122_care
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261122_care"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "care_checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terminal_serial", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_care_checkins_household_id_households")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_checkins")),
        sa.UniqueConstraint("household_id", "day", name="uq_care_checkins_household_day"),
    )
    op.create_index(op.f("ix_care_checkins_household_id"), "care_checkins", ["household_id"])
    op.create_index(op.f("ix_care_checkins_day"), "care_checkins", ["day"])
    op.create_table(
        "care_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=True),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.Column("work_order_code", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_care_tasks_household_id_households")),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_care_tasks_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_tasks")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_care_tasks_dedupe_key")),
    )
    for col in ("kind", "household_id", "region_path", "day", "status"):
        op.create_index(op.f(f"ix_care_tasks_{col}"), "care_tasks", [col])
    op.create_table(
        "elderly_services",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("place", sa.String(length=255), nullable=False),
        sa.Column("schedule", sa.String(length=255), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_elderly_services_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_elderly_services")),
    )
    op.create_index(op.f("ix_elderly_services_region_id"), "elderly_services", ["region_id"])
    op.create_index(op.f("ix_elderly_services_region_path"), "elderly_services", ["region_path"])
    op.create_table(
        "speech_clips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=96), nullable=False),
        sa.Column("text_sha", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=96), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_speech_clips")),
        sa.UniqueConstraint("text_sha", name=op.f("uq_speech_clips_text_sha")),
    )
    op.create_index(op.f("ix_speech_clips_ref"), "speech_clips", ["ref"])


def downgrade() -> None:
    op.drop_table("speech_clips")
    op.drop_table("elderly_services")
    op.drop_table("care_tasks")
    op.drop_table("care_checkins")
