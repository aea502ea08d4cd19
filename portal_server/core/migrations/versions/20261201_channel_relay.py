"""Live channels relayed from the head-end: source, status, catch-up hours, relay facts.

Revision ID: 20261201_channel_relay
"""
import sqlalchemy as sa
from alembic import op

revision = "20261201_channel_relay"
down_revision = "20261123_meetings"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("epg_channels") as b:
        b.add_column(sa.Column("source_url", sa.String(length=512), nullable=False, server_default=""))
        b.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default=""))
        b.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column("catchup_hours", sa.Integer(), nullable=False, server_default="72"))
        b.add_column(sa.Column("relay_pid", sa.Integer(), nullable=True))
        b.add_column(sa.Column("relay_mode", sa.String(length=12), nullable=True))
        b.add_column(sa.Column("disk_bytes", sa.BigInteger(), nullable=False, server_default="0"))
        b.add_column(sa.Column("low_rendition", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("epg_channels") as b:
        for c in ("low_rendition", "disk_bytes", "relay_mode", "relay_pid", "catchup_hours", "status_at", "status", "source_url"):
            b.drop_column(c)
