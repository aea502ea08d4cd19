"""services: catalogue categories and items, booking slots, bookings

Revision ID: 20261122_services
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261122_services"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_categories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("sort", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["service_categories.id"],
                                name=op.f("fk_service_categories_parent_id_service_categories")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_categories")),
        sa.UniqueConstraint("code", name=op.f("uq_service_categories_code")),
    )
    op.create_index(op.f("ix_service_categories_parent_id"), "service_categories", ["parent_id"])
    op.create_table(
        "service_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("item_type", sa.String(length=16), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("department", sa.String(length=64), nullable=False),
        sa.Column("implementer", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.Text(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("materials_json", sa.Text(), nullable=False),
        sa.Column("steps_json", sa.Text(), nullable=False),
        sa.Column("statutory_days", sa.Integer(), nullable=False),
        sa.Column("promised_days", sa.Integer(), nullable=False),
        sa.Column("fee", sa.String(length=128), nullable=False),
        sa.Column("fee_basis", sa.String(length=255), nullable=False),
        sa.Column("location", sa.String(length=255), nullable=False),
        sa.Column("hours", sa.String(length=128), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("local", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["category_id"], ["service_categories.id"],
                                name=op.f("fk_service_items_category_id_service_categories")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_items")),
    )
    op.create_index(op.f("ix_service_items_code"), "service_items", ["code"], unique=True)
    op.create_index(op.f("ix_service_items_category_id"), "service_items", ["category_id"])
    op.create_table(
        "booking_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_booking_slots_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_slots")),
        sa.UniqueConstraint("region_id", "starts_at", name="uq_booking_slots_place_start"),
    )
    op.create_index(op.f("ix_booking_slots_region_id"), "booking_slots", ["region_id"])
    op.create_index(op.f("ix_booking_slots_region_path"), "booking_slots", ["region_path"])
    op.create_index(op.f("ix_booking_slots_starts_at"), "booking_slots", ["starts_at"])
    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("service_code", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("terminal_serial", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("served_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["slot_id"], ["booking_slots.id"], name=op.f("fk_bookings_slot_id_booking_slots")),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_bookings_household_id_households")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
        sa.UniqueConstraint("code", name=op.f("uq_bookings_code")),
    )
    op.create_index(op.f("ix_bookings_slot_id"), "bookings", ["slot_id"])
    op.create_index(op.f("ix_bookings_service_code"), "bookings", ["service_code"])
    op.create_index(op.f("ix_bookings_household_id"), "bookings", ["household_id"])


def downgrade() -> None:
    op.drop_table("bookings")
    op.drop_table("booking_slots")
    op.drop_table("service_items")
    op.drop_table("service_categories")
