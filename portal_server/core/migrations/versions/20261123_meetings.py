"""meetings (motions, votes, attendance) and the programme guide (channels, programmes)

Revision ID: 20261123_meetings
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261123_meetings"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("agenda", sa.Text(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.Column("stream_key", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("publisher_id", sa.String(length=32), nullable=True),
        sa.Column("live_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("ffmpeg_pid", sa.Integer(), nullable=True),
        sa.Column("hls_mode", sa.String(length=12), nullable=True),
        sa.Column("ffmpeg_restarts", sa.Integer(), nullable=False),
        sa.Column("replay_ready", sa.Boolean(), nullable=False),
        sa.Column("minutes_file", sa.String(length=255), nullable=True),
        sa.Column("minutes_name", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_meetings_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
    )
    op.create_index(op.f("ix_meetings_region_id"), "meetings", ["region_id"])
    op.create_index(op.f("ix_meetings_region_path"), "meetings", ["region_path"])
    op.create_index(op.f("ix_meetings_starts_at"), "meetings", ["starts_at"])
    op.create_index(op.f("ix_meetings_status"), "meetings", ["status"])
    op.create_index(op.f("ix_meetings_stream_key"), "meetings", ["stream_key"], unique=True)
    op.create_table(
        "meeting_motions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"],
                                name=op.f("fk_meeting_motions_meeting_id_meetings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_motions")),
    )
    op.create_index(op.f("ix_meeting_motions_meeting_id"), "meeting_motions", ["meeting_id"])
    op.create_table(
        "meeting_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("motion_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("choice", sa.String(length=8), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["motion_id"], ["meeting_motions.id"],
                                name=op.f("fk_meeting_votes_motion_id_meeting_motions")),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"],
                                name=op.f("fk_meeting_votes_household_id_households")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_votes")),
        sa.UniqueConstraint("motion_id", "household_id", name=op.f("uq_meeting_votes_motion_id")),
    )
    op.create_index(op.f("ix_meeting_votes_motion_id"), "meeting_votes", ["motion_id"])
    op.create_table(
        "meeting_attendance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=32), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"],
                                name=op.f("fk_meeting_attendance_meeting_id_meetings")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_attendance")),
        sa.UniqueConstraint("meeting_id", "serial", name=op.f("uq_meeting_attendance_meeting_id")),
    )
    op.create_index(op.f("ix_meeting_attendance_meeting_id"), "meeting_attendance", ["meeting_id"])
    op.create_table(
        "epg_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("xmltv_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("region_code", sa.String(length=12), nullable=True),
        sa.Column("stream_url", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epg_channels")),
    )
    op.create_index(op.f("ix_epg_channels_xmltv_id"), "epg_channels", ["xmltv_id"], unique=True)
    op.create_index(op.f("ix_epg_channels_number"), "epg_channels", ["number"])
    op.create_index(op.f("ix_epg_channels_region_code"), "epg_channels", ["region_code"])
    op.create_table(
        "epg_programmes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["epg_channels.id"],
                                name=op.f("fk_epg_programmes_channel_id_epg_channels")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_epg_programmes")),
    )
    op.create_index(op.f("ix_epg_programmes_channel_id"), "epg_programmes", ["channel_id"])
    op.create_index(op.f("ix_epg_programmes_starts_at"), "epg_programmes", ["starts_at"])
    op.create_index(op.f("ix_epg_programmes_ends_at"), "epg_programmes", ["ends_at"])


def downgrade() -> None:
    for t in ("epg_programmes", "epg_channels", "meeting_attendance", "meeting_votes", "meeting_motions",
              "meetings"):
        op.drop_table(t)
