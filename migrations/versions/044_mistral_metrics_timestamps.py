"""Rebuild mistral_metrics with timestamps and a generated id

Revision ID: 044
Revises: 043
"""
import sqlalchemy as sa
from alembic import op

from mistral_db_flows import ddl

revision = "044"
down_revision = "043"

TABLE = "mistral_metrics"
# Holds the rows while the table is rebuilt. The rebuild is needed
# because the new column order (timestamps first) cannot be reached by
# ALTER on PostgreSQL, and the holding table is what lets a crash at any
# point be resumed without losing the rows.
HOLD = "mistral_metrics_old"


def _has_old_shape() -> bool:
    """Whether mistral_metrics still has 042's columns (offline: yes)."""
    if ddl.offline():
        return True
    insp = sa.inspect(op.get_bind())
    if not insp.has_table(TABLE):
        return False
    return "created_at" not in {c["name"] for c in insp.get_columns(TABLE)}


def _utc_now() -> str:
    """SQL for the current UTC time (Mistral stores naive UTC)."""
    return {"postgresql": "(now() AT TIME ZONE 'UTC')",
            "mysql": "UTC_TIMESTAMP()"}.get(ddl.dialect(),
                                            "CURRENT_TIMESTAMP")


def upgrade():
    if _has_old_shape():
        ddl.create_table(
            HOLD,
            sa.Column("id", sa.Integer(), autoincrement=False),
            sa.Column("name", sa.String(255)),
            sa.Column("value", sa.String(255)),
        )
        # Rows without a name or value cannot live in the new table
        # (both become NOT NULL); the rest are kept.
        ddl.execute(
            "INSERT INTO %(hold)s (id, name, value) "
            "SELECT m.id, m.name, m.value FROM %(table)s m "
            "WHERE m.name IS NOT NULL AND m.value IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM %(hold)s h "
            "WHERE h.name = m.name)" % {"hold": HOLD, "table": TABLE})
        ddl.drop_table(TABLE)

    ddl.create_table(
        TABLE,
        sa.Column("created_at", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime()),
        # SERIAL on PostgreSQL (sequence mistral_metrics_id_seq),
        # AUTO_INCREMENT on MySQL.
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "name", name=ddl.name({"postgresql": "mistral_metrics_name_key",
                                   "mysql": "name"})),
    )

    if ddl.offline() or ddl.has_table(HOLD):
        # New ids come from the sequence in the old order, so the
        # maintenance row keeps id 1 and the sequence stays ahead of
        # every id in the table.
        ddl.execute(
            "INSERT INTO %(table)s (created_at, updated_at, name, value) "
            "SELECT %(now)s, %(now)s, h.name, h.value FROM %(hold)s h "
            "WHERE NOT EXISTS (SELECT 1 FROM %(table)s m "
            "WHERE m.name = h.name) ORDER BY h.id"
            % {"hold": HOLD, "table": TABLE, "now": _utc_now()})
        ddl.drop_table(HOLD)

    # Like upstream, the table always ends with the maintenance row.
    ddl.execute(
        "INSERT INTO %(table)s (created_at, updated_at, name, value) "
        "SELECT %(now)s, %(now)s, 'maintenance_status', 'RUNNING'%(dual)s "
        "WHERE NOT EXISTS (SELECT 1 FROM %(table)s "
        "WHERE name = 'maintenance_status')"
        % {"table": TABLE, "now": _utc_now(),
           "dual": " FROM DUAL" if ddl.dialect() == "mysql" else ""})
