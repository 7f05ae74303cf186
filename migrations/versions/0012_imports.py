"""spreadsheet imports: the uploaded files, and ID numbers kept only as a keyed hash

`import_files` keeps each uploaded spreadsheet with what importing it did. A volunteer's mainland ID
number is never stored: `volunteers.id_number_hash` (HMAC of it, unique, NULL when not given) finds the
person again on the next roster, `volunteers.id_number_tail` shows it masked.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'import_files',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_import_files_created_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_files')),
    )
    with op.batch_alter_table('import_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_files_created_by_id'), ['created_by_id'], unique=False)
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('id_number_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('id_number_tail', sa.String(length=4), nullable=False, server_default=''))
        batch_op.create_unique_constraint(batch_op.f('uq_volunteers_id_number_hash'), ['id_number_hash'])


def downgrade():
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_volunteers_id_number_hash'), type_='unique')
        batch_op.drop_column('id_number_tail')
        batch_op.drop_column('id_number_hash')
    with op.batch_alter_table('import_files', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_files_created_by_id'))
    op.drop_table('import_files')
