"""availability: hour rollups per site, for the Sites page's 24 h figures

A new table only, filled from the device hour rollups already kept (each
device's hours filed under its current site, '' for none).

Revision ID: a9c4e6b2d813
Revises: f2b3c4d5e6a7
Create Date: 2026-12-02 19:20:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'a9c4e6b2d813'
down_revision = 'f2b3c4d5e6a7'
branch_labels = None
depends_on = None

SECONDS = tuple(
    f'{name}_seconds'
    for name in ('connected', 'temporarily_offline', 'disconnected', 'off_hours', 'expected_on')
)


def upgrade():
    op.create_table(
        'availability_site_hour',
        sa.Column('site', sa.String(length=200), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=False) for name in SECONDS),
        sa.PrimaryKeyConstraint('site', 'hour'),
    )
    op.create_index('ix_availability_site_hour_hour', 'availability_site_hour', ['hour'])
    sums = ', '.join(f'sum(h.{name})' for name in SECONDS)
    op.execute(
        f"INSERT INTO availability_site_hour (site, hour, {', '.join(SECONDS)}) "
        f"SELECT coalesce(d.site, ''), h.hour, {sums} FROM availability_hour h "
        "JOIN device d ON d.id = h.device_id GROUP BY coalesce(d.site, ''), h.hour"
    )


def downgrade():
    op.drop_table('availability_site_hour')
