"""Add task_executions_v2.type, set from the task spec

Revision ID: 020
Revises: 019
"""
import sqlalchemy as sa

from mistral_db_flows import ddl

revision = "020"
down_revision = "019"

# A task runs a sub-workflow when its spec (JSON text) is an object with
# a top-level "workflow" key, whatever the value (null included); any
# other task runs an action. Set-based statements decide it on the
# server, each touching only rows not done yet, so they can be re-run.
#
# Upstream (observed by running it) loads each spec in Python and fails
# the whole upgrade on a NULL, non-JSON, number or JSON null spec; we set
# those rows to 'ACTION'. On a JSON array or string, which Mistral never
# stores as a spec, upstream tests membership; we say 'ACTION'. A key
# spelled with \u escapes counts on PostgreSQL only (MariaDB and SQLite
# compare the raw key text); Mistral never writes it that way.

# PostgreSQL (11+) keeps the DEFAULT of an added column in the catalogue
# instead of writing it into every row: every task becomes 'ACTION' for
# free and only the workflow tasks are written. The default is dropped
# afterwards (the reference has none); the rows keep their 'ACTION'.
# Before 020 completes nothing else sets the type, so an 'ACTION' row with
# a workflow spec is one this revision has not corrected yet.
_PG_IS_WORKFLOW = "%s::jsonb -> 'workflow' IS NOT NULL"
# One line: tools that split offline scripts at lines ending in ";" must
# not cut the PL/pgSQL block apart.
_PG_WORKFLOW_TASKS = " ".join([
    "DO $$ BEGIN",
    "UPDATE task_executions_v2 SET type = 'WORKFLOW'",
    "WHERE (type IS NULL OR type = 'ACTION')",
    "AND %s;" % (_PG_IS_WORKFLOW % "spec"),
    # Some spec is not JSON (or holds \u0000, which PostgreSQL cannot
    # decode): the fast statement is rolled back. Redo it row by row on
    # the server, skipping only the specs that cannot be read.
    "EXCEPTION WHEN data_exception THEN DECLARE r record;",
    "BEGIN FOR r IN SELECT id, spec FROM task_executions_v2",
    "WHERE type IS NULL OR type = 'ACTION' LOOP",
    "BEGIN IF %s THEN" % (_PG_IS_WORKFLOW % "r.spec"),
    "UPDATE task_executions_v2 SET type = 'WORKFLOW' WHERE id = r.id;",
    "END IF;",
    "EXCEPTION WHEN data_exception THEN NULL; END;",
    "END LOOP; END; END $$",
])
_PG_ACTION_TASKS = ("UPDATE task_executions_v2 SET type = 'ACTION' "
                    "WHERE type IS NULL")
_PG_DROP_DEFAULT = ("ALTER TABLE task_executions_v2 ALTER COLUMN type "
                    "DROP DEFAULT")

# MariaDB's JSON functions return NULL on invalid JSON, MySQL's raise:
# JSON_VALID is checked first in its own CASE so neither evaluates them.
_MYSQL = """\
UPDATE task_executions_v2
SET type = CASE WHEN JSON_VALID(spec) THEN
             CASE WHEN JSON_TYPE(spec) = 'OBJECT'
                   AND JSON_CONTAINS_PATH(spec, 'one', '$.workflow')
                  THEN 'WORKFLOW' ELSE 'ACTION' END
           ELSE 'ACTION' END
WHERE type IS NULL"""

# json_type() raises on malformed JSON; CASE evaluates lazily. The path
# '$.workflow' is NULL on arrays and scalars, 'null' for a JSON null.
_SQLITE = """\
UPDATE task_executions_v2
SET type = CASE WHEN json_valid(spec) THEN
             CASE WHEN json_type(spec, '$.workflow') IS NOT NULL
                  THEN 'WORKFLOW' ELSE 'ACTION' END
           ELSE 'ACTION' END
WHERE type IS NULL"""


def upgrade():
    if ddl.dialect() == "postgresql":
        ddl.add_column("task_executions_v2",
                       sa.Column("type", sa.String(10),
                                 server_default="ACTION"))
        # Only the column this revision adds is rewritten: nothing to
        # keep for the revert (which drops it), as save_rows knows.
        ddl.save_rows("task_executions_v2", ["id"], ["type"],
                      "type IS NULL OR type = 'ACTION'")
        ddl.execute(_PG_WORKFLOW_TASKS)
        # Rows left NULL (the column was added without the default,
        # e.g. by hand) are action tasks unless the step above said so.
        ddl.execute(_PG_ACTION_TASKS)
        ddl.execute(_PG_DROP_DEFAULT)
        return
    ddl.add_column("task_executions_v2", sa.Column("type", sa.String(10)))
    ddl.save_rows("task_executions_v2", ["id"], ["type"], "type IS NULL")
    ddl.execute(ddl.name({"mysql": _MYSQL, "sqlite": _SQLITE}))
