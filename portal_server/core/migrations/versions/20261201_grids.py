"""grids, their households, visits, patrols, the assessment rule table and weekly reports

Revision ID: 20261201_grids
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261201_grids"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "grids",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("region_id", sa.Integer(), sa.ForeignKey("regions.id"), nullable=False),
        sa.Column("region_path", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("region_id", "name", name="uq_grids_region_name"),
    )
    op.create_index("ix_grids_region_id", "grids", ["region_id"])
    op.create_index("ix_grids_region_path", "grids", ["region_path"])
    op.create_index("ix_grids_worker_id", "grids", ["worker_id"])
    op.create_table(
        "grid_households",
        sa.Column("household_id", sa.Integer(), sa.ForeignKey("households.id"), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id"), nullable=False),
        sa.Column("assigned_by", sa.String(64), nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
    )
    op.create_index("ix_grid_households_grid_id", "grid_households", ["grid_id"])
    op.create_table(
        "grid_visits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id"), nullable=True),
        sa.Column("household_id", sa.Integer(), sa.ForeignKey("households.id"), nullable=True),
        sa.Column("region_id", sa.Integer(), sa.ForeignKey("regions.id"), nullable=False),
        sa.Column("region_path", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("category", sa.String(16), nullable=True),
        sa.Column("feedback_id", sa.Integer(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("photo_path", sa.String(128), nullable=True),
        sa.Column("client_key", sa.String(80), nullable=True),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("worker_id", "client_key", name="uq_grid_visits_worker_key"),
    )
    for col in ("worker_id", "grid_id", "household_id", "region_id", "region_path", "kind",
                "feedback_id", "recorded_at"):
        op.create_index(f"ix_grid_visits_{col}", "grid_visits", [col])
    op.create_index("ix_grid_visits_period", "grid_visits",
                    ["recorded_at", "region_id", "worker_id", "grid_id", "kind", "feedback_id"])
    op.create_table(
        "grid_patrols",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("worker_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("region_path", sa.String(255), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("track_json", sa.Text(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
    )
    for col in ("worker_id", "region_path", "started_at"):
        op.create_index(f"ix_grid_patrols_{col}", "grid_patrols", [col])
    op.create_table(
        "grid_assessment_rules",
        sa.Column("key", sa.String(32), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "grid_weekly_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("week_start", sa.Date(), nullable=False, unique=True),
        sa.Column("generated_at", TS, nullable=False),
        sa.Column("data_json", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for t in ("grid_weekly_reports", "grid_assessment_rules", "grid_patrols", "grid_visits",
              "grid_households", "grids"):
        op.drop_table(t)
