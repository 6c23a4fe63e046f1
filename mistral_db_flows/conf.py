"""Every option of mistral-db-flows, and the Settings the API takes.

``[database] connection`` has exactly the name and meaning Mistral gives
it, so an existing ``mistral.conf`` works unchanged. Our own options live
in ``[db_manage]``. Library functions never read ``cfg.CONF``: the CLI
turns a ``ConfigOpts`` into a :class:`Settings` with
:func:`settings_from_conf` and passes that.
"""
from __future__ import annotations

import dataclasses
import os

from oslo_config import cfg

DATABASE_GROUP = "database"
GROUP = "db_manage"

# With no connection configured, Mistral (and so we) use this file in the
# working directory.
DEFAULT_SQLITE_FILE = "mistral.sqlite"

# The operations whose task lists are data; option name = <op>_tasks.
OPERATIONS = ("upgrade", "stamp", "populate", "populate_actions", "verify",
              "downgrade")

DEFAULT_TASKS: dict[str, list[str]] = {
    "upgrade": ["backup", "check_branches", "migrate", "verify"],
    "stamp": ["backup", "check_branches", "stamp", "verify"],
    "populate": ["backup", "populate", "verify"],
    "populate_actions": ["backup", "populate_actions", "verify"],
    "verify": ["verify"],
    "downgrade": ["check_branches", "downgrade"],
}

DEFAULT_LOCK_TIMEOUT = 300
DEFAULT_STATEMENT_LOCK_TIMEOUT = 2.0
DEFAULT_BACKUP_KEEP = 5
DEFAULT_RUNS_KEEP = 20
ON_FAILURE_CHOICES = ("revert", "stop")
# Operations whose steps undo their own writes on revert without any
# journal or dump (stamp puts the stamp back, populate its upserts).
SELF_REVERTING = ("populate", "populate_actions", "stamp")
# [db_manage] backup: what a run keeps to undo itself (docs/safety.md).
BACKUP_CHOICES = ("steps", "full", "none")
# Spellings of the boolean this option was before: true kept a dump,
# which the per-step journal now replaces.
_OLD_BACKUP = {"true": "steps", "yes": "steps", "on": "steps", "1": "steps",
               "false": "none", "no": "none", "off": "none", "0": "none"}

database_opts = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="SQLAlchemy URL of Mistral's database, read exactly as "
             "Mistral reads it. Unset: the SQLite file %s in the working "
             "directory." % DEFAULT_SQLITE_FILE),
]


def _tasks_opt(operation: str) -> cfg.ListOpt:
    return cfg.ListOpt(
        "%s_tasks" % operation,
        default=list(DEFAULT_TASKS[operation]),
        help="Task plugins (entry points in the mistral_db_flows.tasks "
             "namespace) making up the `%s` flow, in order. A package "
             "adds a task by registering an entry point and naming it "
             "here; it replaces one of ours by registering the same "
             "name." % operation)


db_manage_opts = [_tasks_opt(op) for op in OPERATIONS] + [
    cfg.StrOpt(
        "backup_dir",
        help="Where backups taken before a change are written (0700 "
             "directory, 0600 files). Unset: <state_dir>/backups."),
    cfg.StrOpt(
        "backup",
        default="steps",
        help="What a run that changes the database keeps to undo itself "
             "when a step fails. steps: each migrate step records the "
             "inverse of its own changes, and a copy of only the data it "
             "destroys or rewrites, in side tables of the database "
             "(dropped when the run succeeds); no dump. full: that, and a full dump before the run "
             "(e.g. before a major release jump), restored on failure. "
             "none: nothing is kept; a failure stops and leaves the "
             "database as it is. The old true/false mean steps/none "
             "(deprecated)."),
    cfg.IntOpt(
        "backup_keep",
        default=DEFAULT_BACKUP_KEEP,
        min=1,
        help="How many backups of each database to keep, per kind "
             "(pre-upgrade backups and others are counted apart, so "
             "other runs never push out a pre-upgrade backup); older "
             "ones are deleted after a successful run."),
    cfg.IntOpt(
        "runs_keep",
        default=DEFAULT_RUNS_KEEP,
        min=1,
        help="How many ended runs of each database the logbook keeps; "
             "older ones are deleted when a run ends. An interrupted run "
             "is never deleted."),
    cfg.BoolOpt(
        "populate_remove_missing",
        default=False,
        help="Let populate delete system workflows that no definition "
             "source loaded here defines. Off: they are kept and listed, "
             "since Mistral's own environment may have the plugin "
             "providing them (install mistral-db-flows there)."),
    cfg.BoolOpt(
        "keep_revert_data",
        default=False,
        help="After a successful upgrade keep its steps' revert data "
             "(their inverse operations and the copies of the data they "
             "destroyed or rewrote, in mdf_revert_* tables of the "
             "database) so that `downgrade` can undo revisions that "
             "destroyed or rewrote data. Off: it is dropped, and "
             "`downgrade` undoes only schema-only revisions. While it "
             "is kept the schema at head has these extra tables; "
             "`downgrade` uses it up and `drop_revert_data` drops it. "
             "Refused with backup = none, which records none."),
    cfg.StrOpt(
        "on_failure",
        default="revert",
        choices=[("revert", "undo what the run changed: each step "
                            "its own change (or, with backup = full, "
                            "restore the dump taken at the start)"),
                 ("stop", "leave the database as it is for inspection "
                          "and a later resume")],
        help="What a failed run does to the database."),
    cfg.StrOpt(
        "state_dir",
        help="Where run state (the TaskFlow logbook, and a cache of the "
             "schema verify expects) is kept. Unset: "
             "$XDG_STATE_HOME/mistral-db-flows or "
             "~/.local/state/mistral-db-flows."),
    cfg.StrOpt(
        "logbook_connection",
        secret=True,
        help="SQLAlchemy URL of a shared TaskFlow logbook database (for "
             "runs started from several hosts). Unset: a SQLite file in "
             "state_dir. Never Mistral's own database."),
    cfg.IntOpt(
        "lock_timeout",
        default=DEFAULT_LOCK_TIMEOUT,
        min=0,
        help="Seconds to wait for another run on the same database to "
             "finish before giving up with exit code 11; also how long a "
             "restore waits for locks other sessions (e.g. running Mistral "
             "services) hold before giving up with exit code 9; and how "
             "long a schema change retries while another session holds "
             "a lock on its table (see statement_lock_timeout)."),
    cfg.FloatOpt(
        "statement_lock_timeout",
        default=DEFAULT_STATEMENT_LOCK_TIMEOUT,
        min=0.1,
        help="Seconds one schema change may wait for a lock another "
             "session holds on its table (PostgreSQL lock_timeout, "
             "MariaDB lock_wait_timeout) before it backs off and tries "
             "again: the longest any reader of that table is kept "
             "waiting behind it."),
    cfg.BoolOpt(
        "refuse_if_connected",
        default=False,
        help="Refuse to change the database (exit code 14) while other "
             "sessions are connected to it; by default they are only "
             "listed as a warning. Mistral's services should be stopped "
             "during an upgrade."),
]


# Mistral's own logging options (oslo.log's names, short options and
# meaning), in [DEFAULT] like theirs: deployment tools pass them on the
# command line and mistral.conf may set them. Registered as command-line
# options by cli.arguments; console sets logging up from them.
logging_opts = [
    cfg.BoolOpt(
        "debug",
        short="d",
        default=False,
        help="Log at DEBUG level, show every step and print the traceback "
             "of an error (passwords stay masked)."),
    cfg.BoolOpt(
        "verbose",
        short="v",
        default=False,
        help="Log at INFO level on stderr too: every step's start and end "
             "and Alembic's \"Running upgrade\" lines."),
    cfg.StrOpt(
        "log-config-append",
        metavar="PATH",
        deprecated_name="log-config",
        help="A logging configuration file (Python's logging.config "
             "fileConfig format) that decides where log records go; when "
             "set, log_file, log_dir and use_syslog are not used. The "
             "operator's messages (steps, errors) stay on stderr."),
    cfg.StrOpt(
        "log-file",
        metavar="PATH",
        deprecated_name="logfile",
        help="Also write log records (INFO, DEBUG with debug) and the "
             "steps to this file, appending. Relative to log_dir when "
             "that is set."),
    cfg.StrOpt(
        "log-dir",
        deprecated_name="logdir",
        help="Directory of log_file; without log_file, log to "
             "<log_dir>/mistral-db-manage.log."),
    cfg.BoolOpt(
        "use-syslog",
        default=False,
        help="Also send log records to syslog."),
    cfg.StrOpt(
        "syslog-log-facility",
        default="LOG_USER",
        help="Syslog facility of the records sent with use_syslog."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option onto ``conf`` (safe to call twice).

    A host whose ``ConfigOpts`` has ``[database] connection`` already
    (oslo.db registers its own, with other help and defaults) keeps its
    option: only ours in ``[db_manage]`` are added, and
    :func:`settings_from_conf` reads the host's ``connection``.
    """
    for opt in database_opts:
        try:
            conf.register_opt(opt, group=DATABASE_GROUP)
        except cfg.DuplicateOptError:
            pass  # the host's own option of that name is the one read
    conf.register_opts(db_manage_opts, group=GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """For oslo-config-generator (entry point oslo.config.opts)."""
    return [("DEFAULT", list(logging_opts)),
            (DATABASE_GROUP, list(database_opts)),
            (GROUP, list(db_manage_opts))]


def default_database_url(cwd: str | None = None) -> str:
    """The embedded default: mistral.sqlite in the working directory."""
    path = os.path.join(os.path.abspath(cwd or os.getcwd()),
                        DEFAULT_SQLITE_FILE)
    return "sqlite:///%s" % path


def _default_tasks() -> dict[str, list[str]]:
    return {op: list(names) for op, names in DEFAULT_TASKS.items()}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The explicit inputs of every command.

    ``tasks`` maps an operation (``upgrade``, ``stamp``, ``populate``,
    ``populate_actions``, ``verify``) to its ordered task plugin names;
    an operation missing from it takes :data:`DEFAULT_TASKS`.
    """

    database_url: str = dataclasses.field(
        default_factory=default_database_url)
    tasks: dict[str, list[str]] = dataclasses.field(
        default_factory=_default_tasks)
    backup_dir: str | None = None
    state_dir: str | None = None
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT
    statement_lock_timeout: float = DEFAULT_STATEMENT_LOCK_TIMEOUT
    refuse_if_connected: bool = False
    backup: str = "steps"
    backup_keep: int = DEFAULT_BACKUP_KEEP
    on_failure: str = "revert"
    logbook_connection: str | None = None
    runs_keep: int = DEFAULT_RUNS_KEEP
    populate_remove_missing: bool = False
    keep_revert_data: bool = False

    def __post_init__(self) -> None:
        from mistral_db_flows import exceptions

        object.__setattr__(self, "backup", backup_mode(self.backup))
        if self.on_failure not in ON_FAILURE_CHOICES:
            raise exceptions.ConfigError(
                "on_failure must be one of %s, not %r"
                % (", ".join(ON_FAILURE_CHOICES), self.on_failure))
        if self.keep_revert_data and self.backup == "none":
            # Nothing is recorded with backup = none: keeping "it" would
            # promise a downgrade that is then refused.
            raise exceptions.ConfigError(
                "keep_revert_data needs backup = steps or full: with "
                "backup = none (--no-backup) no revert data is recorded")

    @property
    def restores_on_failure(self) -> bool:
        """A failure reverts (else it stops for a resume)."""
        return self.backup != "none" and self.on_failure == "revert"

    @property
    def keeps_step_reverts(self) -> bool:
        """Migrate steps journal their inverses (``steps``, ``full``)."""
        return self.backup != "none"

    def takes_dump(self, operation: str) -> bool:
        """Whether ``operation`` starts with a full dump: only with
        ``full``, and never for the operations that undo their own
        writes (stamp, populate)."""
        return self.backup == "full" and operation not in SELF_REVERTING

    def resolved_state_dir(self) -> str:
        if self.state_dir:
            return os.path.abspath(self.state_dir)
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(
            os.path.expanduser("~"), ".local", "state")
        return os.path.join(base, "mistral-db-flows")

    def resolved_backup_dir(self) -> str:
        if self.backup_dir:
            return os.path.abspath(self.backup_dir)
        return os.path.join(self.resolved_state_dir(), "backups")

    def task_names(self, operation: str) -> list[str]:
        if operation in self.tasks:
            return list(self.tasks[operation])
        return list(DEFAULT_TASKS[operation])

    def __repr__(self) -> str:
        # Never show the URL: it may carry a password.
        return ("Settings(database_url=<hidden>, tasks=%r, backup_dir=%r, "
                "state_dir=%r, lock_timeout=%r, backup=%r, on_failure=%r, "
                "logbook_connection=%s)"
                % (self.tasks, self.backup_dir, self.state_dir,
                   self.lock_timeout, self.backup, self.on_failure,
                   "<hidden>" if self.logbook_connection else None))


def backup_mode(value: str | bool | None) -> str:
    """``[db_manage] backup`` read: one of BACKUP_CHOICES; the old
    boolean spellings are mapped, with a deprecation warning."""
    import logging

    if isinstance(value, bool):
        return "steps" if value else "none"
    text = str(value if value is not None else "steps").strip().lower()
    if text in BACKUP_CHOICES:
        return text
    if text in _OLD_BACKUP:
        logging.getLogger(__name__).warning(
            "[db_manage] backup = %s is deprecated: it now means %s "
            "(choices: %s)", value, _OLD_BACKUP[text],
            ", ".join(BACKUP_CHOICES))
        return _OLD_BACKUP[text]
    from mistral_db_flows import exceptions

    raise exceptions.ConfigError(
        "backup must be one of %s, not %r"
        % (", ".join(BACKUP_CHOICES), value))


def settings_from_conf(conf: cfg.ConfigOpts) -> Settings:
    """Read a parsed ``ConfigOpts`` (options registered) into Settings."""
    group = getattr(conf, GROUP)
    url = getattr(conf, DATABASE_GROUP).connection
    return Settings(
        database_url=url or default_database_url(),
        tasks={op: list(getattr(group, "%s_tasks" % op))
               for op in OPERATIONS},
        backup_dir=group.backup_dir,
        state_dir=group.state_dir,
        lock_timeout=group.lock_timeout,
        statement_lock_timeout=group.statement_lock_timeout,
        refuse_if_connected=group.refuse_if_connected,
        backup=group.backup,
        backup_keep=group.backup_keep,
        on_failure=group.on_failure,
        logbook_connection=group.logbook_connection,
        runs_keep=group.runs_keep,
        populate_remove_missing=group.populate_remove_missing,
        keep_revert_data=group.keep_revert_data,
    )
