"""revoked_sessions: staff web sessions ended by logout (server-side revocation)

Revision ID: 20261201_revoked_sessions
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa

revision = "20261201_revoked_sessions"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("revoked_sessions",
                    sa.Column("sid", sa.String(length=43), nullable=False),
                    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint("sid"))
    op.create_index("ix_revoked_sessions_expires_at", "revoked_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_revoked_sessions_expires_at", table_name="revoked_sessions")
    op.drop_table("revoked_sessions")
