"""NOC alarms about things other than terminals and villages (a channel's source lost).

Revision ID: 20261201_alarm_subject
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_alarm_subject"
down_revision = "20261122_fleet"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fleet_alarms") as b:
        b.add_column(sa.Column("subject", sa.String(length=64), nullable=True))
        b.create_index(b.f("ix_fleet_alarms_subject"), ["subject"])


def downgrade() -> None:
    with op.batch_alter_table("fleet_alarms") as b:
        b.drop_index(b.f("ix_fleet_alarms_subject"))
        b.drop_column("subject")
