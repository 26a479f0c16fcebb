"""feature aggregates: hourly and daily downsampled features, kept for good

Revision ID: 0006
Revises: 0005
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("features_hourly", "features_daily")


def upgrade() -> None:
    for table in _TABLES:
        op.create_table(
            table,
            sa.Column("asset_id", sa.String(length=64), nullable=False),
            sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
            sa.Column("key", sa.String(length=160), nullable=False),
            sa.Column("n", sa.Integer(), nullable=False),
            sa.Column("mean", sa.Float(), nullable=False),
            sa.Column("min", sa.Float(), nullable=False),
            sa.Column("max", sa.Float(), nullable=False),
            sa.Column("last", sa.Float(), nullable=False),
            sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("asset_id", "bucket_start", "key"),
        )
        # the dashboard's trend reads: one asset's key over a time range
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f"ix_{table}_asset_key_bucket", ["asset_id", "key", "bucket_start"], unique=False)


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_asset_key_bucket")
        op.drop_table(table)
