"""availability: day and hour rollups per device, each device's tally, outages

New tables only: `device` is not touched (on SQLite a batch rebuild of it would
drop the severity expression index).

Revision ID: f7a8b9c0d1e2
Revises: f2b8c1d4e7a9
Create Date: 2026-12-02 04:10:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f7a8b9c0d1e2'
down_revision = 'f2b8c1d4e7a9'
branch_labels = None
depends_on = None


def _seconds_columns():
    names = ('connected', 'temporarily_offline', 'disconnected', 'off_hours', 'expected_on')
    return [sa.Column(f'{name}_seconds', sa.Float(), nullable=False) for name in names]


def _device_fk():
    return sa.ForeignKeyConstraint(['device_id'], ['device.id'], ondelete='CASCADE')


def upgrade():
    op.create_table(
        'availability_day',
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        *_seconds_columns(),
        _device_fk(),
        sa.PrimaryKeyConstraint('device_id', 'day'),
    )
    op.create_index('ix_availability_day_day', 'availability_day', ['day'])
    op.create_table(
        'availability_hour',
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        *_seconds_columns(),
        _device_fk(),
        sa.PrimaryKeyConstraint('device_id', 'hour'),
    )
    op.create_index('ix_availability_hour_hour', 'availability_hour', ['hour'])
    op.create_table(
        'availability_tally',
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('tallied_to', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('expected_off', sa.String(length=16), nullable=True),
        sa.Column('outage_since', sa.DateTime(timezone=True), nullable=True),
        _device_fk(),
        sa.PrimaryKeyConstraint('device_id'),
    )
    op.create_table(
        'outage',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('device_id', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('ended_by', sa.String(length=32), nullable=True),
        _device_fk(),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_outage_device_started', 'outage', ['device_id', 'started_at'], unique=True)
    op.create_index('ix_outage_started', 'outage', ['started_at'])


def downgrade():
    op.drop_table('outage')
    op.drop_table('availability_tally')
    op.drop_table('availability_hour')
    op.drop_table('availability_day')
