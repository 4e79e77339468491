"""early_delivery_statuses, chat_migrations: provider reports kept until their message is known; Telegram chat moves

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:10:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import config.sql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('early_delivery_statuses',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('provider_message_id', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=32), nullable=True),
    sa.Column('received_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_early_delivery_statuses'))
    )
    op.create_index('ix_early_delivery_statuses_provider', 'early_delivery_statuses',
                    ['channel', 'provider_message_id'], unique=False)
    op.create_table('chat_migrations',
    sa.Column('old_chat_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('new_chat_id', sa.BigInteger(), nullable=False),
    sa.Column('migrated_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('old_chat_id', name=op.f('pk_chat_migrations'))
    )


def downgrade() -> None:
    op.drop_table('chat_migrations')
    op.drop_index('ix_early_delivery_statuses_provider', table_name='early_delivery_statuses')
    op.drop_table('early_delivery_statuses')
