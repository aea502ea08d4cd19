"""registry: household status, people, houses, household-house links, comparison findings

Revision ID: 20261201_registry
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261201_registry"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("households") as b:
        b.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="active"))
        b.add_column(sa.Column("moved_out_at", sa.DateTime(timezone=True), nullable=True))
        # the household list of a town: a range on the path, filtered by status, read from the index alone
        b.create_index("ix_households_path_status", ["region_path", "status"])
    op.create_table(
        "registry_people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("id_number_enc", sa.Text(), nullable=True),
        sa.Column("id_number_hash", sa.String(length=64), nullable=True),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("tags", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("died_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_registry_people_household_id_households")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_people")),
    )
    for col in ("household_id", "region_path", "id_number_hash", "status"):
        op.create_index(f"ix_registry_people_{col}", "registry_people", [col])
    op.create_table(
        "registry_houses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("lane", sa.String(length=32), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("col", sa.Integer(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_registry_houses_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_houses")),
        sa.UniqueConstraint("region_id", "number", name="uq_registry_houses_region_number"),
    )
    op.create_index("ix_registry_houses_region_id", "registry_houses", ["region_id"])
    op.create_index("ix_registry_houses_region_path", "registry_houses", ["region_path"])
    op.create_table(
        "registry_household_houses",
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("house_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.id"], name=op.f("fk_registry_household_houses_household_id_households")),
        sa.ForeignKeyConstraint(["house_id"], ["registry_houses.id"], name=op.f("fk_registry_household_houses_house_id_registry_houses")),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_registry_household_houses")),
    )
    op.create_index("ix_registry_household_houses_house_id", "registry_household_houses", ["house_id"])
    op.create_table(
        "registry_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("region_path", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_type", sa.String(length=16), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("found_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_findings")),
    )
    op.create_index("ix_registry_findings_region_path", "registry_findings", ["region_path"])
    op.create_index("ix_registry_findings_kind", "registry_findings", ["kind"])


def downgrade() -> None:
    op.drop_table("registry_findings")
    op.drop_table("registry_household_houses")
    op.drop_table("registry_houses")
    op.drop_table("registry_people")
    with op.batch_alter_table("households") as b:
        b.drop_index("ix_households_path_status")
        b.drop_column("moved_out_at")
        b.drop_column("status")
