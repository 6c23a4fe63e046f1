"""The one error family of mistral-db-flows.

Every error carries its facts as attributes; ``cli`` turns an error into
one line on stderr and the exit code named by ``exit_code``.
"""
from __future__ import annotations


class MistralDbError(Exception):
    """Base class: a failure the operator can understand and act on."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SchemaConflict(MistralDbError):
    """An object exists with the name a revision wants, in another shape.

    Re-running a half-applied revision skips objects that already have
    the intended shape; an object of another shape is never accepted
    silently.
    """

    exit_code = 6

    def __init__(self, kind: str, name: str, table: str | None,
                 expected: str, found: str) -> None:
        self.kind = kind
        self.name = name
        self.table = table
        self.expected = expected
        self.found = found
        where = " on table %s" % table if table and table != name else ""
        super().__init__(
            "%s %s%s exists with another shape: found %s, expected %s; "
            "fix or drop it by hand, then run the upgrade again"
            % (kind, name, where, found, expected))


class ConfigError(MistralDbError):
    """A configuration file is missing or unreadable, or an option is bad."""

    exit_code = 2

    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class BadUrl(MistralDbError):
    """``[database] connection`` is not a URL we can use.

    ``url`` is the URL with its password hidden (it ends up in messages).
    """

    exit_code = 2

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            "bad database URL %s: %s; fix [database] connection"
            % (url, reason))


class DatabaseUnreachable(MistralDbError):
    """The server does not answer, or refuses the credentials.

    ``url`` has its password hidden; ``reason`` is the driver's first
    line, with the password scrubbed should a driver ever echo it.
    """

    exit_code = 3

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            "cannot connect to %s: %s; check that the server runs and "
            "[database] connection is right" % (url, reason))


class UnknownRevision(MistralDbError):
    """A revision that is not in our history (asked for, or stamped)."""

    exit_code = 4

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


class BadTarget(MistralDbError):
    """A target, range, delta or option combination that cannot be run."""

    exit_code = 2

    def __init__(self, target: object, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(reason)


class BranchError(MistralDbError):
    """The revision graph is not one unbroken chain with a single head."""

    exit_code = 5

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


class ReadOnlyMigrations(MistralDbError):
    """``revision`` would write into an installed (not source) tree."""

    exit_code = 2

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            "the migrations in %s are installed, not a source checkout; "
            "run `revision` from a git checkout installed with "
            "`pip install -e .`" % path)


class PluginError(MistralDbError):
    """A task plugin is missing, fails to load, or misbehaves."""

    exit_code = 2

    def __init__(self, name: str, reason: str,
                 namespace: str = "mistral_db_flows.tasks") -> None:
        self.name = name
        self.reason = reason
        self.namespace = namespace
        super().__init__("task plugin %r (%s): %s"
                         % (name, namespace, reason))


class StepFailed(MistralDbError):
    """A step of a flow failed; ``cause`` is the original exception.

    ``run`` is the :class:`results.Run` of the failed run (state
    ``failed``, steps with their states) when the flow was run by us.
    """

    exit_code = 7

    def __init__(self, step: str, cause: BaseException | str,
                 run: object = None, aftermath: str | None = None) -> None:
        self.step = step
        self.cause = cause
        self.run = run
        self.aftermath = aftermath
        first = (str(cause).strip().splitlines() or [type(cause).__name__])
        super().__init__("step %s failed: %s%s" % (
            step, first[0], "; %s" % aftermath if aftermath else ""))


class VerifyFailed(MistralDbError):
    """The database is not what the run should have left behind."""

    exit_code = 7

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = self.problems[:5]
        more = len(self.problems) - len(shown)
        super().__init__(
            "verification failed: %s%s" % (
                "; ".join(shown), " (and %d more)" % more if more else ""))


class ResumeRefused(MistralDbError):
    """An interrupted run exists that this command cannot continue.

    ``run`` names the interrupted run (operation, target, step); the way
    out is to run its command again, or ``abandon`` it.
    """

    exit_code = 12

    def __init__(self, reason: str, *, operation: str,
                 target: str | None, step: str | None) -> None:
        self.reason = reason
        self.operation = operation
        self.target = target
        self.step = step
        super().__init__(
            "%s; an interrupted %s%s stopped at step %s: run `%s%s` to "
            "resume it, or `abandon` to forget it (the database stays as "
            "it is)" % (reason, operation,
                        " to %s" % target if target else "",
                        step or "?", operation,
                        " %s" % target if target and operation in (
                            "upgrade", "stamp") else ""))


class UnsupportedRevisionFile(MistralDbError):
    """A revision file uses an Alembic feature the graph does not model.

    ``path`` is the file, ``name`` the declaration (``branch_labels`` or
    ``depends_on``) and ``value`` what it declares, as written.
    """

    exit_code = 5

    def __init__(self, path: str, name: str, value: str) -> None:
        self.path = path
        self.name = name
        self.value = value
        super().__init__(
            "revision file %s declares %s = %s, which mistral-db-flows "
            "does not support: keep one linear chain (down_revision only)"
            % (path, name, value))
