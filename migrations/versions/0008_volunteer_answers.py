"""structured decline reasons and answers to a series

A declined offer keeps why, as a choice the repair can act on (`decline_kind`: not free then, too
far, other) beside the volunteer's own words (`decline_reason`, unchanged). Declines from before
this revision have no kind (NULL): they forbid only their own service, as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decline_kind', sa.Enum('not_free', 'too_far', 'other', name='decline_reason',
                                                              native_enum=False, create_constraint=True, length=24),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_assignments_decline_reason'), type_='check')
        batch_op.drop_column('decline_kind')
