"""feedback: urgent work orders (same-day deadline; care's one-key help, staff and hotline mark them)

Revision ID: 20261123_feedback_urgent
Revises: 20261122_feedback
"""
from alembic import op
import sqlalchemy as sa


revision = "20261123_feedback_urgent"
down_revision = "20261122_feedback"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a column's constraints in place (PostgreSQL just ALTERs).
    with op.batch_alter_table("work_orders") as batch:
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("work_orders") as batch:
        batch.drop_column("urgent")
