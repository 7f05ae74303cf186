"""demand review (审单) and notifications stored as events

A township or district may review its communities' demands before dispatch (`areas.review_demands`,
off for every existing area); a demand's review state and the reason it was returned
(`demands.review`, NULL for demands that were never reviewed; `demands.review_note`). A
notification keeps its event's parameters (`notifications.params`, NULL for older rows, which keep
showing their stored text).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('areas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_demands', sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table('demands', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review', sa.Enum('pending', 'returned', 'approved', name='review_state',
                                                        native_enum=False, create_constraint=True, length=24),
                                      nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.String(length=500), nullable=False, server_default=''))
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('params')
    with op.batch_alter_table('demands', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_demands_review_state'), type_='check')
        batch_op.drop_column('review_note')
        batch_op.drop_column('review')
    with op.batch_alter_table('areas', schema=None) as batch_op:
        batch_op.drop_column('review_demands')
