"""ticket_counter: ticket numbers from one locked row, not MAX(number) + 1 races

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 14:50:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ticket_counter',
    sa.Column('name', sa.String(length=16), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_ticket_counter'))
    )
    # Existing tickets keep their numbers; the next one continues after the highest.
    op.execute("INSERT INTO ticket_counter (name, value) SELECT 'ticket', COALESCE(MAX(number), 0) FROM tickets")


def downgrade() -> None:
    op.drop_table('ticket_counter')
