"""bulk actions done a chunk at a time, with their progress

Revision ID: c3e8f5a2b901
Revises: b7d2c41e9a10
Create Date: 2026-12-02 01:50:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'c3e8f5a2b901'
down_revision = 'b7d2c41e9a10'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'bulk_action',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('view', sa.JSON(), nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('last_device_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('bulk_action', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bulk_action_state'), ['state'], unique=False)


def downgrade():
    with op.batch_alter_table('bulk_action', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bulk_action_state'))
    op.drop_table('bulk_action')
