"""audit_seal: appends take no lock; a sealing job chains the rows (issue 16's apply at 50 boxes)

Every audited write used to lock the single audit_head row until its commit, serialising all of
them. Rows now get their id from the database and an HMAC of their own (``mac``); ``seq``,
``prev_hash`` and ``hash`` are filled by the sealer. The rows already written were sealed in
order with seq = id, so they keep their hashes.

Revision ID: 20261201_audit_seal
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261201_audit_seal"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
    op.execute("UPDATE audit_events SET seq = id")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f("uq_audit_events_seq"), ["seq"])
    if op.get_bind().dialect.name == "postgresql":
        # The id was given by the appender under the head lock; now the database gives it.
        op.execute("CREATE SEQUENCE audit_events_id_seq OWNED BY audit_events.id")
        op.execute("SELECT setval('audit_events_id_seq', COALESCE((SELECT max(id) FROM audit_events), 0) + 1, false)")
        op.execute("ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT nextval('audit_events_id_seq')")
    # SQLite: an INTEGER PRIMARY KEY is the rowid, given by the database already.


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_events ALTER COLUMN id DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_events_id_seq")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_seq"), type_="unique")
        batch_op.drop_column("mac")
        batch_op.drop_column("seq")
