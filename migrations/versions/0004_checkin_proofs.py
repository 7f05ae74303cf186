"""check-in proofs: a code secret per occurrence, how attendance was proven

The static six-digit check-in code of an occurrence is replaced by a random secret behind
time-based check-in and check-out codes (matcher/checkin.py); every existing occurrence gets one,
so services published before this revision keep their codes working (new ones). Assignments record
how attendance was proven: "checked" (checked in with a code) or "by_hand" (ticked by the
community worker); completed services are filled in from their check-in time.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 10:00:00

"""
import base64
import secrets

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _new_secret():
    """Like matcher.checkin.new_secret (160 random bits in base32), without importing the app."""
    return base64.b32encode(secrets.token_bytes(20)).decode()


def upgrade():
    with op.batch_alter_table('demand_occurrences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkin_secret', sa.String(length=32), nullable=True))
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM demand_occurrences WHERE checkin_secret IS NULL")).scalars().all()
    for row_id in ids:
        bind.execute(sa.text("UPDATE demand_occurrences SET checkin_secret = :s WHERE id = :i"),
                     {'s': _new_secret(), 'i': row_id})
    with op.batch_alter_table('demand_occurrences', schema=None) as batch_op:
        batch_op.drop_column('checkin_code')

    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attendance', sa.String(length=10), nullable=True))
        batch_op.create_check_constraint(op.f('ck_assignments_attendance_kind'),
                                         "attendance IS NULL OR attendance IN ('checked', 'by_hand')")
    bind.execute(sa.text("UPDATE assignments SET attendance = CASE WHEN checked_in_at IS NULL "
                         "THEN 'by_hand' ELSE 'checked' END WHERE status = 'completed'"))


def downgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_assignments_attendance_kind'), type_='check')
        batch_op.drop_column('attendance')

    with op.batch_alter_table('demand_occurrences', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checkin_code', sa.String(length=12), nullable=True))
    bind = op.get_bind()
    ids = bind.execute(sa.text("SELECT id FROM demand_occurrences WHERE checkin_secret IS NOT NULL")).scalars().all()
    for row_id in ids:
        bind.execute(sa.text("UPDATE demand_occurrences SET checkin_code = :c WHERE id = :i"),
                     {'c': f"{secrets.randbelow(10**6):06d}", 'i': row_id})
    with op.batch_alter_table('demand_occurrences', schema=None) as batch_op:
        batch_op.drop_column('checkin_secret')
