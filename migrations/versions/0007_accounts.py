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


def _account_links_up():
    op.create_table('account_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.Enum('invite', 'activate', 'reset', name='link_purpose', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.Integer(), nullable=True),
    sa.Column('area_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.Enum('admin', 'coordinator', 'worker', 'org_leader', 'volunteer', name='user_role', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('note', sa.String(length=120), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('used_by_id', sa.Integer(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_account_links_area_id_areas')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_account_links_created_by_id_users')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_account_links_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['used_by_id'], ['users.id'], name=op.f('fk_account_links_used_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_account_links_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_account_links')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_account_links_token_hash'))
    )
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_links_user_id'), ['user_id'], unique=False)


def _account_links_down():
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_links_user_id'))
    op.drop_table('account_links')


def _volunteers_up():
    """Birth dates, guardian consent for minors, self-registration awaiting approval."""
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('birth_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('guardian_name', sa.String(length=40), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('guardian_phone', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('guardian_relation', sa.String(length=20), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('guardian_consent_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('guardian_consent_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('self_registered_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_volunteers_guardian_consent_by_id_users'), 'users',
                                    ['guardian_consent_by_id'], ['id'])
    # The models give these defaults in Python; the server defaults only filled the existing rows.
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.alter_column('guardian_name', server_default=None)
        batch_op.alter_column('guardian_relation', server_default=None)


def _volunteers_down():
    with op.batch_alter_table('volunteers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_volunteers_guardian_consent_by_id_users'), type_='foreignkey')
        batch_op.drop_column('self_registered_at')
        batch_op.drop_column('guardian_consent_by_id')
        batch_op.drop_column('guardian_consent_at')
        batch_op.drop_column('guardian_relation')
        batch_op.drop_column('guardian_phone')
        batch_op.drop_column('guardian_name')
        batch_op.drop_column('birth_date')


def _users_up():
    """Account locks: who locked the account, when and why."""
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('locked_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('lock_reason', sa.String(length=200), nullable=False, server_default=''))
        batch_op.create_foreign_key(batch_op.f('fk_users_locked_by_id_users'), 'users', ['locked_by_id'], ['id'])
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.alter_column('lock_reason', server_default=None)


def _users_down():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_users_locked_by_id_users'), type_='foreignkey')
        batch_op.drop_column('lock_reason')
        batch_op.drop_column('locked_by_id')
        batch_op.drop_column('locked_at')


# One step per table; another part adds its own (e.g. the users' columns) to both lists.
def upgrade():
    _account_links_up()
    _volunteers_up()
    _users_up()


def downgrade():
    _users_down()
    _volunteers_down()
    _account_links_down()
