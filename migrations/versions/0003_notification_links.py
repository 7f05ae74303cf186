"""notification links as endpoint names

The domain stops writing URLs into notifications: a notification now names the page it leads to
by endpoint and arguments, and the web layer builds the URL. Existing links are translated.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:40:00

"""
import json
import re

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# The two kinds of link the service wrote before this revision.
DEMAND = re.compile(r"^/demands/(\d+)$")


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link_endpoint', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('link_args', sa.JSON(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, link FROM notifications WHERE link <> ''")).all()
    for row_id, link in rows:
        match = DEMAND.match(link)
        if match:
            endpoint, args = 'demands.view', {'demand_id': int(match.group(1))}
        elif link == '/me/offers':
            endpoint, args = 'volunteer.offers', {}
        else:
            continue
        bind.execute(sa.text("UPDATE notifications SET link_endpoint = :e, link_args = :a WHERE id = :i"),
                     {'e': endpoint, 'a': json.dumps(args), 'i': row_id})
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('link')


def downgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link', sa.String(length=200), nullable=False, server_default=''))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, link_endpoint, link_args FROM notifications "
                                "WHERE link_endpoint <> ''")).all()
    for row_id, endpoint, args in rows:
        args = json.loads(args) if isinstance(args, str) else (args or {})
        if endpoint == 'demands.view':
            link = f"/demands/{args.get('demand_id')}"
        elif endpoint == 'volunteer.offers':
            link = '/me/offers'
        else:
            continue
        bind.execute(sa.text("UPDATE notifications SET link = :l WHERE id = :i"), {'l': link, 'i': row_id})
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_column('link_args')
        batch_op.drop_column('link_endpoint')
