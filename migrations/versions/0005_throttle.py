"""throttle counters shared by every web worker

Password guesses (sign-in, password change) are counted per address and per account in fixed
time windows. With Redis configured the counters live there; without it, in this table, so that
every gunicorn worker sees the same counts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 11:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'throttle_counters',
        sa.Column('key', sa.String(length=80), nullable=False),
        sa.Column('window_start', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('key', 'window_start', name=op.f('pk_throttle_counters')),
    )
    with op.batch_alter_table('throttle_counters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_throttle_counters_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('throttle_counters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_throttle_counters_expires_at'))
    op.drop_table('throttle_counters')
