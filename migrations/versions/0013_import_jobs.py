"""imports of every kind, large ones as a background job

`import_files` gains the job's state (queued, planning, planned, importing, done, failed; NULL for a
small file judged in the request), its progress (`rows_done` of `rows_total`), the stored plan (JSON:
counts, problems, first rows), the failure's message and when the job last reported (`updated_at`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('state', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('rows_total', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('rows_done', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('plan', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('message', sa.String(length=500), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('import_files', schema=None) as batch_op:
        batch_op.drop_column('updated_at')
        batch_op.drop_column('message')
        batch_op.drop_column('plan')
        batch_op.drop_column('rows_done')
        batch_op.drop_column('rows_total')
        batch_op.drop_column('state')
