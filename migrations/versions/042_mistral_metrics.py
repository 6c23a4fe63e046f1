"""Create the mistral_metrics table with the maintenance status

Revision ID: 042
Revises: 041
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "042"
down_revision = "041"


def upgrade():
    ddl.create_table(
        "mistral_metrics",
        sa.Column("name", sa.String(255)),
        sa.Column("value", sa.String(255)),
        # Numbered by hand at this revision: no sequence, no
        # AUTO_INCREMENT, a server default of 1.
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=False,
                  server_default=sa.text("1")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "name", name=ddl.name({"postgresql": "mistral_metrics_name_key",
                                   "mysql": "name"})),
    )
    # Literal values so that the offline script has no parameters; the
    # NOT EXISTS guard makes a re-run add no second row. MySQL before
    # 8.0 wants a FROM clause next to WHERE.
    ddl.execute(
        "INSERT INTO mistral_metrics (id, name, value) "
        "SELECT 1, 'maintenance_status', 'RUNNING'%s "
        "WHERE NOT EXISTS (SELECT 1 FROM mistral_metrics "
        "WHERE name = 'maintenance_status')"
        % (" FROM DUAL" if ddl.dialect() == "mysql" else ""))
