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
# other task runs an action. One statement per backend does it on the
# server, only for rows not done yet (type IS NULL), so it can be re-run.
#
# Upstream (observed by running it) loads each spec in Python and fails
# the whole upgrade on a NULL, non-JSON, number or JSON null spec; we set
# those rows to 'ACTION'. On a JSON array or string, which Mistral never
# stores as a spec, upstream tests membership; we say 'ACTION'. A key
# spelled with \u escapes counts on PostgreSQL only (MariaDB and SQLite
# compare the raw key text); Mistral never writes it that way.

# The statement is one line: tools that split offline scripts at lines
# ending in ";" must not cut the PL/pgSQL block apart.
_PG_TYPE = ("CASE WHEN %s::jsonb -> 'workflow' IS NOT NULL"
            " THEN 'WORKFLOW' ELSE 'ACTION' END")
_POSTGRESQL = " ".join([
    "DO $$ BEGIN",
    "UPDATE task_executions_v2 SET type = %s" % (_PG_TYPE % "spec"),
    "WHERE type IS NULL;",
    # Some spec is not JSON (or holds \u0000, which PostgreSQL cannot
    # decode): the fast statement is rolled back. Redo it row by row on
    # the server so that only the bad specs become 'ACTION'.
    "EXCEPTION WHEN data_exception THEN DECLARE r record; t varchar(10);",
    "BEGIN FOR r IN SELECT id, spec FROM task_executions_v2",
    "WHERE type IS NULL LOOP",
    "BEGIN t := %s;" % (_PG_TYPE % "r.spec"),
    "EXCEPTION WHEN data_exception THEN t := 'ACTION'; END;",
    "UPDATE task_executions_v2 SET type = t WHERE id = r.id;",
    "END LOOP; END; END $$",
])

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
    ddl.add_column("task_executions_v2", sa.Column("type", sa.String(10)))
    ddl.execute(ddl.name({"postgresql": _POSTGRESQL, "mysql": _MYSQL,
                          "sqlite": _SQLITE}))
