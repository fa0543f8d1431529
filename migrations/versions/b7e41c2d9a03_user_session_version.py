"""a session version per user, so that sessions can be ended server-side

Each session names the version it was opened under; logging out, changing the
password or deactivating the account bumps it, and every older session cookie
(copies included) stops working.

Revision ID: b7e41c2d9a03
Revises: c3e8f5a2b901
Create Date: 2026-12-02 00:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7e41c2d9a03'
down_revision = 'c3e8f5a2b901'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_version', sa.Integer(), server_default='0', nullable=False)
        )


def downgrade():
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_version')
