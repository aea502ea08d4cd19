"""fleet: commands and per-box results, firmware, rollouts, alarms

Revision ID: 20261122_fleet
Revises: 20261122_foundation
"""
from alembic import op
import sqlalchemy as sa


revision = "20261122_fleet"
down_revision = "20261122_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('fleet_alarms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('serial', sa.String(length=32), nullable=True),
    sa.Column('region_code', sa.String(length=12), nullable=True),
    sa.Column('region_path', sa.String(length=255), nullable=True),
    sa.Column('message', sa.String(length=255), nullable=False),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cleared_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_alarms'))
    )
    op.create_index(op.f('ix_fleet_alarms_cleared_at'), 'fleet_alarms', ['cleared_at'], unique=False)
    op.create_index(op.f('ix_fleet_alarms_kind'), 'fleet_alarms', ['kind'], unique=False)
    op.create_index(op.f('ix_fleet_alarms_region_path'), 'fleet_alarms', ['region_path'], unique=False)
    op.create_index(op.f('ix_fleet_alarms_serial'), 'fleet_alarms', ['serial'], unique=False)
    op.create_table('fleet_command_batches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('args_json', sa.Text(), nullable=False),
    sa.Column('selector_json', sa.Text(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_command_batches'))
    )
    op.create_table('fleet_firmware',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('model', sa.String(length=32), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=128), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_firmware')),
    sa.UniqueConstraint('version', name=op.f('uq_fleet_firmware_version'))
    )
    op.create_table('fleet_rollouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('firmware_id', sa.Integer(), nullable=False),
    sa.Column('previous_version', sa.String(length=32), nullable=True),
    sa.Column('waves_json', sa.String(length=64), nullable=False),
    sa.Column('wave', sa.Integer(), nullable=False),
    sa.Column('success_threshold', sa.Float(), nullable=False),
    sa.Column('error_threshold', sa.Float(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('pause_reason', sa.String(length=255), nullable=True),
    sa.Column('selector_json', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['firmware_id'], ['fleet_firmware.id'], name=op.f('fk_fleet_rollouts_firmware_id_fleet_firmware')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_rollouts'))
    )
    op.create_index(op.f('ix_fleet_rollouts_firmware_id'), 'fleet_rollouts', ['firmware_id'], unique=False)
    op.create_index(op.f('ix_fleet_rollouts_status'), 'fleet_rollouts', ['status'], unique=False)
    op.create_table('fleet_commands',
    sa.Column('id', sa.String(length=24), nullable=False),
    sa.Column('batch_id', sa.Integer(), nullable=True),
    sa.Column('rollout_id', sa.Integer(), nullable=True),
    sa.Column('terminal_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('args_json', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['fleet_command_batches.id'], name=op.f('fk_fleet_commands_batch_id_fleet_command_batches')),
    sa.ForeignKeyConstraint(['rollout_id'], ['fleet_rollouts.id'], name=op.f('fk_fleet_commands_rollout_id_fleet_rollouts')),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_fleet_commands_terminal_id_terminals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_commands'))
    )
    op.create_index(op.f('ix_fleet_commands_batch_id'), 'fleet_commands', ['batch_id'], unique=False)
    op.create_index(op.f('ix_fleet_commands_expires_at'), 'fleet_commands', ['expires_at'], unique=False)
    op.create_index(op.f('ix_fleet_commands_rollout_id'), 'fleet_commands', ['rollout_id'], unique=False)
    op.create_index(op.f('ix_fleet_commands_serial'), 'fleet_commands', ['serial'], unique=False)
    op.create_index(op.f('ix_fleet_commands_status'), 'fleet_commands', ['status'], unique=False)
    op.create_index(op.f('ix_fleet_commands_terminal_id'), 'fleet_commands', ['terminal_id'], unique=False)
    op.create_table('fleet_rollout_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rollout_id', sa.Integer(), nullable=False),
    sa.Column('terminal_id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('command_id', sa.String(length=24), nullable=True),
    sa.ForeignKeyConstraint(['rollout_id'], ['fleet_rollouts.id'], name=op.f('fk_fleet_rollout_targets_rollout_id_fleet_rollouts')),
    sa.ForeignKeyConstraint(['terminal_id'], ['terminals.id'], name=op.f('fk_fleet_rollout_targets_terminal_id_terminals')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fleet_rollout_targets'))
    )
    op.create_index(op.f('ix_fleet_rollout_targets_rollout_id'), 'fleet_rollout_targets', ['rollout_id'], unique=False)
    op.create_index(op.f('ix_fleet_rollout_targets_serial'), 'fleet_rollout_targets', ['serial'], unique=False)
    op.create_index(op.f('ix_fleet_rollout_targets_status'), 'fleet_rollout_targets', ['status'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_fleet_rollout_targets_status'), table_name='fleet_rollout_targets')
    op.drop_index(op.f('ix_fleet_rollout_targets_serial'), table_name='fleet_rollout_targets')
    op.drop_index(op.f('ix_fleet_rollout_targets_rollout_id'), table_name='fleet_rollout_targets')
    op.drop_table('fleet_rollout_targets')
    op.drop_index(op.f('ix_fleet_commands_terminal_id'), table_name='fleet_commands')
    op.drop_index(op.f('ix_fleet_commands_status'), table_name='fleet_commands')
    op.drop_index(op.f('ix_fleet_commands_serial'), table_name='fleet_commands')
    op.drop_index(op.f('ix_fleet_commands_rollout_id'), table_name='fleet_commands')
    op.drop_index(op.f('ix_fleet_commands_expires_at'), table_name='fleet_commands')
    op.drop_index(op.f('ix_fleet_commands_batch_id'), table_name='fleet_commands')
    op.drop_table('fleet_commands')
    op.drop_index(op.f('ix_fleet_rollouts_status'), table_name='fleet_rollouts')
    op.drop_index(op.f('ix_fleet_rollouts_firmware_id'), table_name='fleet_rollouts')
    op.drop_table('fleet_rollouts')
    op.drop_table('fleet_firmware')
    op.drop_table('fleet_command_batches')
    op.drop_index(op.f('ix_fleet_alarms_serial'), table_name='fleet_alarms')
    op.drop_index(op.f('ix_fleet_alarms_region_path'), table_name='fleet_alarms')
    op.drop_index(op.f('ix_fleet_alarms_kind'), table_name='fleet_alarms')
    op.drop_index(op.f('ix_fleet_alarms_cleared_at'), table_name='fleet_alarms')
    op.drop_table('fleet_alarms')
