"""an index on device.ping_received_at: the fleet page asks whether a ping service reports

A plain CREATE INDEX, not a batch migration: on SQLite a batch rebuild of
`device` would drop the severity expression index.

Revision ID: f2b8c1d4e7a9
Revises: f3b8d2a6c914
Create Date: 2026-12-02 04:30:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f2b8c1d4e7a9'
down_revision = 'f3b8d2a6c914'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_device_ping_received_at', 'device', ['ping_received_at'])


def downgrade():
    op.drop_index('ix_device_ping_received_at', table_name='device')
