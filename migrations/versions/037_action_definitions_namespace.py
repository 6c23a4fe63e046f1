"""Add namespace to action definitions, unique per namespace

Revision ID: 037
Revises: 036
"""
import sqlalchemy as sa
from alembic import op

from mistral_db_flows import ddl

revision = "037"
down_revision = "036"

TABLE = "action_definitions_v2"
OLD_COLUMNS = ["name", "project_id"]
NEW_COLUMNS = ["name", "namespace", "project_id"]
# MySQL names both keys after their first column, so the old and the new
# key share the name "name".
OLD_KEY = {"postgresql": "action_definitions_v2_name_project_id_key",
           "mysql": "name"}
NEW_KEY = {"postgresql": "action_definitions_v2_name_namespace_"
                         "project_id_key",
           "mysql": "name"}


def _old_key_present() -> bool:
    """Whether the (name, project_id) key still has to be dropped.

    Needed because on MySQL the finished revision leaves a key with the
    old name: dropping by name alone would drop the new key on a re-run.
    Offline there is nothing to look at and the revision runs in full.
    """
    if ddl.offline():
        return True
    insp = sa.inspect(op.get_bind())
    wanted = ddl.name(OLD_KEY)
    keys = [u for u in insp.get_unique_constraints(TABLE)
            if u["name"] == wanted]
    keys += [i for i in insp.get_indexes(TABLE)
             if i["unique"] and i["name"] == wanted]
    return any(list(k["column_names"]) == OLD_COLUMNS for k in keys)


def upgrade():
    ddl.add_column(TABLE, sa.Column("namespace", sa.String(255)))
    # Upstream meant to do this but its WHERE clause never matched: rows
    # from before namespaces get the default namespace ''. The column is
    # this revision's own, so keeping it for the revert costs nothing.
    ddl.save_rows(TABLE, ["id"], ["namespace"], "namespace IS NULL")
    ddl.execute("UPDATE action_definitions_v2 SET namespace = '' "
                "WHERE namespace IS NULL")
    if _old_key_present():
        ddl.drop_unique(OLD_KEY, TABLE)
    ddl.create_unique(NEW_KEY, TABLE, NEW_COLUMNS)
