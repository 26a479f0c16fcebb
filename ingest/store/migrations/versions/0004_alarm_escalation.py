"""alarm escalation audit: when, by whom and from which priority an open alarm was escalated

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("escalated_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("escalated_from", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_column("escalated_from")
        batch_op.drop_column("escalated_by")
        batch_op.drop_column("escalated_at")
