"""people in: one-time links (invitations, activation, reset), account locks, birth dates and guardian consent

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
