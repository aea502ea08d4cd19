"""alerts: emergency alerts, their target regions, persisted acks

Revision ID: 20261123_alerts
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261123_alerts"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("msg_type", sa.String(length=8), nullable=False),
        sa.Column("references_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("category", sa.String(length=12), nullable=False),
        sa.Column("event", sa.String(length=128), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("certainty", sa.String(length=10), nullable=False),
        sa.Column("headline", sa.String(length=160), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("instruction", sa.Text(), nullable=False),
        sa.Column("display", sa.String(length=10), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("sender_region_path", sa.String(length=255), nullable=False),
        sa.Column("idem_key", sa.String(length=160), nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("needs_confirmation", sa.Boolean(), nullable=False),
        sa.Column("cancelled_by", sa.String(length=64), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("speech_clip_id", sa.Integer(), nullable=True),
        sa.Column("targeted_at_send", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["references_id"], ["alerts.id"], name=op.f("fk_alerts_references_id_alerts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("idem_key", name=op.f("uq_alerts_idem_key")),
    )
    for col in ("references_id", "status", "sent_at", "expires_at"):
        op.create_index(op.f(f"ix_alerts_{col}"), "alerts", [col])
    op.create_table(
        "alert_regions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_regions_alert_id_alerts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_alert_regions_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_regions")),
        sa.UniqueConstraint("alert_id", "region_id", name="uq_alert_regions_alert_region"),
    )
    op.create_index(op.f("ix_alert_regions_alert_id"), "alert_regions", ["alert_id"])
    op.create_index(op.f("ix_alert_regions_code"), "alert_regions", ["code"])
    op.create_table(
        "alert_acks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_acks_alert_id_alerts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_acks")),
        sa.UniqueConstraint("alert_id", "serial", name="uq_alert_acks_alert_serial"),
    )
    op.create_index(op.f("ix_alert_acks_alert_id"), "alert_acks", ["alert_id"])


def downgrade() -> None:
    op.drop_table("alert_acks")
    op.drop_table("alert_regions")
    op.drop_table("alerts")
