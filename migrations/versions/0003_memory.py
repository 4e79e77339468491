"""conversation memory: short-term turns (embedded), summaries, contact profiles and facts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 12:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import config.sql


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('memory_turns',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contact_id', sa.String(length=32), nullable=False),
    sa.Column('conversation_id', sa.String(length=32), nullable=False),
    sa.Column('message_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('standalone', sa.Text(), nullable=True),
    sa.Column('created_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_memory_turns_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_memory_turns_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memory_turns')),
    sa.UniqueConstraint('conversation_id', 'message_id', 'role', name=op.f('uq_memory_turns_conversation_id_message_id_role'))
    )
    with op.batch_alter_table('memory_turns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_memory_turns_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_memory_turns_conversation_order', ['conversation_id', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_memory_turns_created_at'), ['created_at'], unique=False)

    op.create_table('conversation_summaries',
    sa.Column('conversation_id', sa.String(length=32), nullable=False),
    sa.Column('contact_id', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('messages_folded', sa.Integer(), nullable=False),
    sa.Column('last_message_id', sa.String(length=32), nullable=True),
    sa.Column('summarizer', sa.String(length=32), nullable=False),
    sa.Column('created_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_conversation_summaries_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_summaries_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_conversation_summaries'))
    )
    with op.batch_alter_table('conversation_summaries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_summaries_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_summaries_updated_at'), ['updated_at'], unique=False)

    op.create_table('contact_profiles',
    sa.Column('contact_id', sa.String(length=32), nullable=False),
    sa.Column('preferred_language', sa.String(length=8), nullable=True),
    sa.Column('channels', sa.JSON(), nullable=False),
    sa.Column('visits', sa.Integer(), nullable=False),
    sa.Column('first_seen_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_profiles_contact_id_contacts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', name=op.f('pk_contact_profiles'))
    )
    with op.batch_alter_table('contact_profiles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_profiles_last_seen_at'), ['last_seen_at'], unique=False)

    op.create_table('contact_facts',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('contact_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=200), nullable=False),
    sa.Column('source_message_id', sa.String(length=32), nullable=False),
    sa.Column('source_text', sa.Text(), nullable=False),
    sa.Column('created_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', config.sql.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_facts_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_message_id'], ['inbound_messages.id'], name=op.f('fk_contact_facts_source_message_id_inbound_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_facts')),
    sa.UniqueConstraint('contact_id', 'kind', name=op.f('uq_contact_facts_contact_id_kind'))
    )
    with op.batch_alter_table('contact_facts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contact_facts_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_facts_source_message_id'), ['source_message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_contact_facts_updated_at'), ['updated_at'], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ('contact_facts', ('ix_contact_facts_updated_at', 'ix_contact_facts_source_message_id',
                           'ix_contact_facts_contact_id')),
        ('contact_profiles', ('ix_contact_profiles_last_seen_at',)),
        ('conversation_summaries', ('ix_conversation_summaries_updated_at', 'ix_conversation_summaries_contact_id')),
        ('memory_turns', ('ix_memory_turns_created_at', 'ix_memory_turns_conversation_order',
                          'ix_memory_turns_contact_id')),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
