"""What the fence checks before: statements sorted by whether they can
make something durable (see mistral_db_flows/fencing.py)."""
from __future__ import annotations

import pytest

from mistral_db_flows import fencing


@pytest.mark.parametrize("statement", [
    "SELECT version_num FROM alembic_version",
    "  select 1",
    "(SELECT 1) UNION (SELECT 2)",
    "SHOW CREATE TABLE `workbooks_v2`",
    "DESCRIBE `db`.`alembic_version`",
    "SET SESSION lock_wait_timeout = 2, innodb_lock_wait_timeout = 2",
    "SET lock_timeout = DEFAULT",
    "SELECT 1 FROM t WHERE a = 1 LIMIT 1 LOCK IN SHARE MODE",
])
def test_reads_are_not_fenced(statement):
    """Reads and session settings change nothing durable."""
    assert fencing.kind(statement) == fencing.READ


@pytest.mark.parametrize("statement", [
    "INSERT INTO mdf_revert_steps (revision) VALUES ('001')",
    "UPDATE alembic_version SET version_num='032'",
    "delete from delayed_calls_v2 where id = 1",
    "REPLACE INTO t VALUES (1)",
])
def test_row_writes_wait_for_the_commit(statement):
    """Row writes are transactional: the fenced commit (or, on MySQL,
    the next fenced schema statement's implicit commit) covers them."""
    assert fencing.kind(statement) == fencing.ROW_WRITE


@pytest.mark.parametrize("statement", [
    "ALTER TABLE task_executions_v2 ADD COLUMN next_tasks TEXT",
    "\n\tCREATE TABLE workbooks_v2 (id VARCHAR(36))",
    "CREATE TABLE IF NOT EXISTS mdf_revert_steps (revision VARCHAR(32))",
    "DROP TABLE mdf_revert_002_1",
    "RENAME TABLE a TO b",
    "TRUNCATE t",
    "EXECUTE mdf_stmt",          # a prepared schema change (MariaDB)
    "CALL some_procedure()",
    "SELECT * INTO new_table FROM old_table",  # PostgreSQL: creates it
    "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
    "PRAGMA foreign_keys = ON",
    "",
])
def test_anything_else_is_checked_first(statement):
    """Schema statements commit by themselves on MySQL, and whatever is
    not known to be a read or a row write is treated the same way."""
    assert fencing.kind(statement) == fencing.OTHER
