"""Index the columns that list and lookup queries filter on

Also drops two of the cron trigger unique constraints on PostgreSQL.

Revision ID: 009
Revises: 008
"""
from mistral_db_flows import ddl

revision = "009"
down_revision = "008"

# table -> indexed column groups; each index is "<table>_<columns>".
INDEXES = {
    "action_definitions_v2": [["is_system"], ["action_class"],
                              ["project_id"], ["scope"]],
    "cron_triggers_v2": [["next_execution_time"], ["project_id"],
                         ["scope"], ["workflow_name"]],
    "delayed_calls_v2": [["processing", "execution_time"]],
    "environments_v2": [["name"], ["project_id"], ["scope"]],
    "executions_v2": [["project_id"], ["scope"], ["state"], ["type"],
                      ["updated_at"], ["task_execution_id"],
                      ["workflow_execution_id"]],
    "workbooks_v2": [["project_id"], ["scope"]],
    "workflow_definitions_v2": [["is_system"], ["project_id"],
                                ["scope"]],
}

# Upstream looked these up by their PostgreSQL names and dropped what it
# found, so MySQL keeps its copies (workflow_input_hash and _2) until
# 014. The reference schemas show exactly that; we decide by dialect.
OLD_CRON_UNIQUES = (
    "cron_triggers_v2_workflow_input_hash_workflow_name_pattern__key",
    "cron_triggers_v2_workflow_input_hash_workflow_name_pattern_key1",
)


def upgrade():
    # Before the indexes: on SQLite each drop copies the table.
    if ddl.dialect() != "mysql":
        for constraint in OLD_CRON_UNIQUES:
            ddl.drop_unique(constraint, "cron_triggers_v2")

    # On MySQL an index on a foreign key column replaces the implicit
    # index MySQL made for the key (executions_v2's task_execution_id
    # and workflow_execution_id), which is what upstream's schema shows.
    for table, groups in INDEXES.items():
        for columns in groups:
            ddl.create_index("%s_%s" % (table, "_".join(columns)), table,
                             columns)
