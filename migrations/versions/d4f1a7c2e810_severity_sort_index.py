"""the fleet page's default sort, problems first, read from an index

Last in the chain on purpose: SQLite's batch migrations rebuild `device` and
drop expression indexes they cannot reflect, so this index comes after them.

Revision ID: d4f1a7c2e810
Revises: d4a9c7e21f58
Create Date: 2026-12-02 02:15:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'd4f1a7c2e810'
down_revision = 'd4a9c7e21f58'
branch_labels = None
depends_on = None

# Kept as text here: a migration does not import the models that may change after it.
SEVERITY_SQL = "CASE status WHEN 'disconnected' THEN 0 WHEN 'temporarily_offline' THEN 1 ELSE 2 END"


def upgrade():
    op.create_index(
        'ix_device_severity', 'device', [sa.text(f'({SEVERITY_SQL})'), 'last_heartbeat_at', 'uid']
    )


def downgrade():
    op.drop_index('ix_device_severity', table_name='device')
