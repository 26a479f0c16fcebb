"""dashboard indexes: alarm, work-order and status lists read newest first

Revision ID: 0008
Revises: 0007

The dashboard lists open alarms and work orders (by state or status), one asset's, and a time
window of alarms (the ISA-18.2 KPIs), each newest first with the id breaking ties; it shows the
newest status report of each (publisher, asset). These indexes serve those reads on both backends.
"""
from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INDEXES: tuple[tuple[str, str, list[str]], ...] = (
    ("alarms", "ix_alarms_state_raised", ["state", "raised_at", "id"]),
    ("alarms", "ix_alarms_asset_raised", ["asset_id", "raised_at", "id"]),
    ("alarms", "ix_alarms_raised", ["raised_at", "id"]),
    ("work_orders", "ix_work_orders_status_created", ["status", "created_at", "id"]),
    ("work_orders", "ix_work_orders_asset_created", ["asset_id", "created_at", "id"]),
    ("work_orders", "ix_work_orders_created", ["created_at", "id"]),
    ("status_reports", "ix_status_publisher_asset_id", ["publisher", "asset_id", "id"]),
)


def upgrade() -> None:
    for table, name, columns in _INDEXES:
        op.create_index(name, table, columns, unique=False)


def downgrade() -> None:
    for table, name, _ in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
