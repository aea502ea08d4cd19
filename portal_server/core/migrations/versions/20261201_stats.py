"""stats: daily figures per region

Revision ID: 20261201_stats
Revises: 20261122_foundation
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_stats"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "stats_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("region_code", sa.String(12), nullable=False),
        sa.Column("region_path", sa.String(255), nullable=False),
        sa.Column("metric", sa.String(48), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stats_daily"),
        sa.UniqueConstraint("day", "region_code", "metric", name="uq_stats_daily_day_region_metric"),
    )
    op.create_index("ix_stats_daily_day", "stats_daily", ["day"])
    op.create_index("ix_stats_daily_region_day", "stats_daily", ["region_code", "day"])
    op.create_index("ix_stats_daily_region_path", "stats_daily", ["region_path"])
    op.create_index("ix_stats_daily_metric", "stats_daily", ["metric"])


def downgrade():
    op.drop_table("stats_daily")
