"""device commands and screenshots

Revision ID: d4a9c7e21f58
Revises: 42da6e3b79d3
Create Date: 2026-12-02 02:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd4a9c7e21f58'
down_revision = '42da6e3b79d3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('device') as batch:
        batch.add_column(
            sa.Column('commands_pending', sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        'device_command',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('requested_by', sa.String(length=200), nullable=False),
        sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('result', sa.String(length=16), nullable=True),
        sa.Column('message', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_device_command_device_state', 'device_command', ['device_id', 'state'])
    op.create_index('ix_device_command_state_expires', 'device_command', ['state', 'expires_at'])
    op.create_table(
        'screenshot',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('command_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
        sa.Column('media_type', sa.String(length=32), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['command_id'], ['device_command.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_screenshot_device_taken', 'screenshot', ['device_id', 'taken_at'])


def downgrade():
    op.drop_index('ix_screenshot_device_taken', table_name='screenshot')
    op.drop_table('screenshot')
    op.drop_index('ix_device_command_state_expires', table_name='device_command')
    op.drop_index('ix_device_command_device_state', table_name='device_command')
    op.drop_table('device_command')
    with op.batch_alter_table('device') as batch:
        batch.drop_column('commands_pending')
