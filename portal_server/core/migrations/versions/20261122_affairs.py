"""affairs: disclosures with finance and subsidy lines, safety contacts, party study

Revision ID: 20261122_affairs
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261122_affairs"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "affairs_disclosures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_affairs_disclosures_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affairs_disclosures")),
    )
    for col in ("region_id", "region_path", "kind", "period", "status"):
        op.create_index(op.f(f"ix_affairs_disclosures_{col}"), "affairs_disclosures", [col])
    op.create_table(
        "affairs_finance_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("disclosure_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("item", sa.String(length=128), nullable=False),
        sa.Column("income_fen", sa.Integer(), nullable=False),
        sa.Column("expense_fen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["disclosure_id"], ["affairs_disclosures.id"], ondelete="CASCADE",
                                name=op.f("fk_affairs_finance_entries_disclosure_id_affairs_disclosures")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affairs_finance_entries")),
    )
    op.create_index(op.f("ix_affairs_finance_entries_disclosure_id"), "affairs_finance_entries", ["disclosure_id"])
    op.create_table(
        "affairs_subsidy_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("disclosure_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("name_masked", sa.String(length=32), nullable=False),
        sa.Column("name_enc", sa.Text(), nullable=True),
        sa.Column("subsidy", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["disclosure_id"], ["affairs_disclosures.id"], ondelete="CASCADE",
                                name=op.f("fk_affairs_subsidy_entries_disclosure_id_affairs_disclosures")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affairs_subsidy_entries")),
    )
    op.create_index(op.f("ix_affairs_subsidy_entries_disclosure_id"), "affairs_subsidy_entries", ["disclosure_id"])
    op.create_table(
        "safety_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("duty", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_safety_contacts_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_safety_contacts")),
    )
    op.create_index(op.f("ix_safety_contacts_region_id"), "safety_contacts", ["region_id"])
    op.create_index(op.f("ix_safety_contacts_region_path"), "safety_contacts", ["region_path"])
    op.create_table(
        "party_study_materials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("title", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("media_url", sa.String(length=255), nullable=True),
        sa.Column("is_disclosure", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_party_study_materials_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_study_materials")),
    )
    for col in ("region_id", "region_path", "month"):
        op.create_index(op.f(f"ix_party_study_materials_{col}"), "party_study_materials", [col])
    op.create_table(
        "party_study_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("terminal_serial", sa.String(length=32), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["material_id"], ["party_study_materials.id"], ondelete="CASCADE",
                                name=op.f("fk_party_study_records_material_id_party_study_materials")),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_party_study_records_household_id_households")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_study_records")),
        sa.UniqueConstraint("material_id", "household_id", name="uq_party_study_records_material"),
    )
    for col in ("material_id", "household_id", "region_path"):
        op.create_index(op.f(f"ix_party_study_records_{col}"), "party_study_records", [col])


def downgrade() -> None:
    for t in ("party_study_records", "party_study_materials", "safety_contacts", "affairs_subsidy_entries",
              "affairs_finance_entries", "affairs_disclosures"):
        op.drop_table(t)
