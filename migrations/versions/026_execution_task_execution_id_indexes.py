"""Index action and workflow executions by task_execution_id

Revision ID: 026
Revises: 025
"""
from mistral_db_flows import ddl

revision = "026"
down_revision = "025"

# MySQL gave each foreign key on task_execution_id an index named after
# the column (001, 013). The new index can serve the key, so InnoDB drops
# that index by itself -- but only if it made it implicitly: a database
# restored from a dump carries it as an explicit index, which stays. The
# reference schema has no second index, so drop it when it is still
# there. The server itself decides (offline there is no way to look, and
# online the same statements need no look first).
_DROP_IF_PRESENT = [
    "SET @mdf_sql = (SELECT IF(COUNT(*) > 0, "
    "'ALTER TABLE {table} DROP INDEX task_execution_id', 'DO 0') "
    "FROM information_schema.statistics "
    "WHERE table_schema = DATABASE() AND table_name = '{table}' "
    "AND index_name = 'task_execution_id')",
    "PREPARE mdf_stmt FROM @mdf_sql",
    "EXECUTE mdf_stmt",
    "DEALLOCATE PREPARE mdf_stmt",
]


def upgrade():
    for table in ("action_executions_v2", "workflow_executions_v2"):
        ddl.create_index("%s_task_execution_id" % table, table,
                         ["task_execution_id"])
        if ddl.dialect() == "mysql":
            # Its revert needs the foreign key's index back before it
            # drops the new one (MySQL refuses to leave a key without).
            ddl.keep_index("task_execution_id", table,
                           ["task_execution_id"])
            for statement in _DROP_IF_PRESENT:
                ddl.execute(statement.format(table=table))
