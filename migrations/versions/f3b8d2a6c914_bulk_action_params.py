"""a bulk action's parameters: a bulk command's kind needs its params (a delay, say)

Revision ID: f3b8d2a6c914
Revises: e1a2b3c4d5f6
Create Date: 2026-12-02 04:05:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'f3b8d2a6c914'
down_revision = 'e1a2b3c4d5f6'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('bulk_action', sa.Column('params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('bulk_action', schema=None) as batch_op:
        batch_op.drop_column('params')
