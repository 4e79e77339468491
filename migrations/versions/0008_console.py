"""console: owner and staff accounts, sign-in sessions, websites crawled into the knowledge base

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import config.sql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_users',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('set_password_sha256', sa.String(length=64), nullable=True),
    sa.Column('set_password_expires_at', config.sql.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', config.sql.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_console_users')),
    sa.UniqueConstraint('email', name=op.f('uq_console_users_email')),
    sa.UniqueConstraint('set_password_sha256', name=op.f('uq_console_users_set_password_sha256'))
    )
    op.create_table('console_sessions',
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=16), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['console_users.id'], name=op.f('fk_console_sessions_user_id_console_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_sha256', name=op.f('pk_console_sessions'))
    )
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sessions_user_id'), ['user_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_console_sessions_expires_at'), ['expires_at'], unique=False)
    op.create_table('websites',
    sa.Column('id', sa.String(length=16), nullable=False),
    sa.Column('start_url', sa.String(length=2000), nullable=False),
    sa.Column('every_hours', sa.Integer(), nullable=False),
    sa.Column('created_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_synced_at', config.sql.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_report', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_websites')),
    sa.UniqueConstraint('start_url', name=op.f('uq_websites_start_url'))
    )


def downgrade() -> None:
    op.drop_table('websites')
    with op.batch_alter_table('console_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sessions_expires_at'))
        batch_op.drop_index(batch_op.f('ix_console_sessions_user_id'))
    op.drop_table('console_sessions')
    op.drop_table('console_users')
