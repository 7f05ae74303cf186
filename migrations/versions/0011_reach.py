"""reaching people: WeChat binding, reminders once, offers seen, notices opened

A user's bound WeChat identity (`users.wechat_openid`, unique, NULL until the phone client binds it)
and their opt-in to WeChat subscription messages (`users.wechat_subscribed`). A notice written once
per key (`notifications.dedup_key`, unique, NULL for ordinary notices: reminders use it so a reminder
is never written twice) and when its short link was first opened (`notifications.opened_at`). When the
volunteer first saw an offer on their offers page (`assignments.seen_at`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wechat_openid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('wechat_subscribed', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_unique_constraint(batch_op.f('uq_users_wechat_openid'), ['wechat_openid'])
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dedup_key', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('opened_at', sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_notifications_dedup_key'), ['dedup_key'])
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seen_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_column('seen_at')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_notifications_dedup_key'), type_='unique')
        batch_op.drop_column('opened_at')
        batch_op.drop_column('dedup_key')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_users_wechat_openid'), type_='unique')
        batch_op.drop_column('wechat_subscribed')
        batch_op.drop_column('wechat_openid')
