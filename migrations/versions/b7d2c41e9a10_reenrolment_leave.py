"""an operator's leave for a known uid to enrol again

Re-enrolling a known uid needs its current token, or this leave.

Revision ID: b7d2c41e9a10
Revises: 928d44e8c5ba
Create Date: 2026-12-02 01:25:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'b7d2c41e9a10'
down_revision = '928d44e8c5ba'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('reenrolment_allowed_until', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column('reenrolment_allowed_by', sa.String(length=200), nullable=True)
        )


def downgrade():
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_column('reenrolment_allowed_by')
        batch_op.drop_column('reenrolment_allowed_until')
