"""What the operator asked for cannot be done: arguments, configuration,
revisions, plugins. Nothing was changed when one of these is raised."""
from __future__ import annotations

from mistral_db_flows.exceptions import _base


class UsageError(_base.MistralDbError):
    """A wrong combination of arguments, found before any api call."""

    exit_code = _base.ExitCode.USAGE


class ConfigError(_base.MistralDbError):
    """A configuration file is missing or unreadable, or an option is bad."""

    exit_code = _base.ExitCode.USAGE
    path: str | None

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class BadUrl(_base.MistralDbError):
    """``[database] connection`` is not a URL we can use.

    ``url`` is the URL with its password hidden (it ends up in messages).
    """

    exit_code = _base.ExitCode.USAGE
    url: str
    reason: str

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            "bad database URL %s: %s; fix [database] connection"
            % (url, reason))


class DriverMissing(_base.MistralDbError):
    """The Python driver of the database's backend is not installed.

    The URL itself is fine; ``install`` is what to run to get the driver
    (the package extra when the driver is the one it carries).
    """

    exit_code = _base.ExitCode.USAGE
    backend: str
    driver: str
    install: str

    def __init__(self, backend: str, driver: str, install: str) -> None:
        self.backend = backend
        self.driver = driver
        self.install = install
        super().__init__("the %s driver %s is not installed: %s"
                         % (backend, driver, install))


class UnknownRevision(_base.MistralDbError):
    """A revision that is not in our history (asked for, or stamped)."""

    exit_code = _base.ExitCode.UNKNOWN_REVISION
    revision: str
    where: str

    def __init__(self, revision: str, where: str = "target") -> None:
        self.revision = revision
        self.where = where
        if where == "database":
            message = ("the database is stamped with revision %r, which "
                       "this version of mistral-db-flows does not know; "
                       "use the release that created it" % revision)
        else:
            message = ("unknown revision %r; see `mistral-db-manage "
                       "history` for the known ones" % revision)
        super().__init__(message)


class BadTarget(_base.MistralDbError):
    """A target, range, delta or option combination that cannot be run."""

    exit_code = _base.ExitCode.USAGE
    target: object
    reason: str

    def __init__(self, target: object, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(reason)


class RevertDataMissing(_base.MistralDbError):
    """``downgrade``: a revision on the way destroyed or rewrote data (or
    shapes only its run saw) and that run's revert data was not kept;
    refused before anything changed. ``offline``: ``--sql`` was asked,
    and kept data lives only in the database."""

    exit_code = _base.ExitCode.REVERT_DATA_MISSING
    revision: str
    reason: str
    target: str | None
    offline: bool

    def __init__(self, revision: str, reason: str, target: str | None,
                 offline: bool = False) -> None:
        self.revision = revision
        self.reason = reason
        self.target = target
        self.offline = offline
        lowest = "%03d" % int(revision) if revision.isdigit() else revision
        if offline:
            message = ("cannot write downgrade SQL through revision %s: "
                       "it %s, so undoing it needs the revert data kept "
                       "in the database; run `downgrade %s` online "
                       "instead (nothing was printed)"
                       % (revision, reason, target or "base"))
        else:
            message = ("cannot downgrade to %s: revision %s %s, and no "
                       "revert data of the run that applied it was kept "
                       "(`upgrade --keep-revert-data` keeps it); "
                       "downgrade only to %s, or restore a backup taken "
                       "before it; nothing was changed"
                       % (target or "base", revision, reason, lowest))
        super().__init__(message)


class BranchError(_base.MistralDbError):
    """The revision graph is not one unbroken chain with a single head."""

    exit_code = _base.ExitCode.BRANCHES
    branch_points: list[str]
    heads: list[str]
    missing: list[str]

    def __init__(self, branch_points: list[str], heads: list[str],
                 missing: list[str] | None = None) -> None:
        self.branch_points = list(branch_points)
        self.heads = list(heads)
        self.missing = list(missing or [])
        parts = []
        if len(self.heads) != 1:
            parts.append("%d heads (%s)" % (len(self.heads),
                                            ", ".join(self.heads) or "none"))
        if self.branch_points:
            parts.append("branch point(s) %s"
                         % ", ".join(self.branch_points))
        if self.missing:
            parts.append("missing down revision(s) %s"
                         % ", ".join(self.missing))
        super().__init__(
            "the revision graph is not a single chain: %s; merge the "
            "branches (`revision -m merge`) or fix down_revision"
            % "; ".join(parts or ["unsound"]))


class ReadOnlyMigrations(_base.MistralDbError):
    """``revision`` would write into an installed (not source) tree."""

    exit_code = _base.ExitCode.USAGE
    path: str

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            "the migrations in %s are installed, not a source checkout; "
            "run `revision` from a git checkout installed with "
            "`pip install -e .`" % path)


class PluginError(_base.MistralDbError):
    """A task plugin is missing, fails to load, or misbehaves."""

    exit_code = _base.ExitCode.USAGE
    name: str
    reason: str
    namespace: str

    def __init__(self, name: str, reason: str,
                 namespace: str = "mistral_db_flows.tasks") -> None:
        self.name = name
        self.reason = reason
        self.namespace = namespace
        super().__init__("task plugin %r (%s): %s"
                         % (name, namespace, reason))


class UnsupportedRevisionFile(_base.MistralDbError):
    """A revision file uses an Alembic feature the graph does not model.

    ``path`` is the file, ``name`` the declaration (``branch_labels`` or
    ``depends_on``) and ``value`` what it declares, as written.
    """

    exit_code = _base.ExitCode.BRANCHES
    path: str
    name: str
    value: str

    def __init__(self, path: str, name: str, value: str) -> None:
        self.path = path
        self.name = name
        self.value = value
        super().__init__(
            "revision file %s declares %s = %s, which mistral-db-flows "
            "does not support: keep one linear chain (down_revision only)"
            % (path, name, value))
