"""operating hours and maintenance windows; the opening check's column; status events flagged while expected off

Plain ADD COLUMN, not a batch migration: on SQLite a batch rebuild of `device`
would drop the severity expression index.

Revision ID: f2b3c4d5e6a7
Revises: f7a8b9c0d1e2
Create Date: 2026-12-02 04:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f2b3c4d5e6a7'
down_revision = 'f7a8b9c0d1e2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'operating_hours',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site', sa.String(length=200), nullable=True),
        sa.Column('device_id', sa.Integer(), nullable=True),
        sa.Column('schedule', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('device_id'),
        sa.UniqueConstraint('site'),
    )
    op.create_table(
        'maintenance_window',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('site', sa.String(length=200), nullable=True),
        sa.Column('uids', sa.JSON(), nullable=True),
        sa.Column('fleet_filter', sa.String(length=1000), nullable=True),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cron', sa.String(length=120), nullable=True),
        sa.Column('rrule', sa.String(length=500), nullable=True),
        sa.Column('duration_minutes', sa.Integer(), nullable=True),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_by', sa.String(length=200), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_maintenance_window_closed', 'maintenance_window', ['closed_at'])
    op.add_column('device', sa.Column('expected_on_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_device_expected_on_at', 'device', ['expected_on_at'])
    op.add_column('device_event', sa.Column('expected_off', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('device_event', schema=None) as batch_op:
        batch_op.drop_column('expected_off')
    op.drop_index('ix_device_expected_on_at', table_name='device')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('expected_on_at')
    op.drop_index('ix_maintenance_window_closed', table_name='maintenance_window')
    op.drop_table('maintenance_window')
    op.drop_table('operating_hours')
