"""the notification outbox: one row per notice, recipient and outside channel, with its delivery state

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
