"""a device's expected-off state (off hours, maintenance), kept by the schedule tick

Plain ADD COLUMN, not a batch migration: on SQLite a batch rebuild of `device`
would drop the severity expression index.

Revision ID: e1a2b3c4d5f6
Revises: d4f1a7c2e810
Create Date: 2026-12-02 03:55:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e1a2b3c4d5f6'
down_revision = 'd4f1a7c2e810'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('device', sa.Column('expected_off', sa.String(length=16), nullable=True))
    op.add_column('device', sa.Column('expected_off_since', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_device_expected_off', 'device', ['expected_off'])


def downgrade():
    op.drop_index('ix_device_expected_off', table_name='device')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('expected_off_since')
        batch_op.drop_column('expected_off')
