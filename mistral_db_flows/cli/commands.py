"""One function per command: call the api, render the result.

Each ``run_<command>(args, settings, out)`` returns the exit code of a
success; failures are raised and turned into a line and a code by the
package's entry point.
"""
from __future__ import annotations

import dataclasses
import io
from typing import Any, Callable

from mistral_db_flows import console
from mistral_db_flows import exceptions
from mistral_db_flows.cli import arguments

PROG = arguments.PROG
_arg = arguments.arg


# -- rendering -------------------------------------------------------------

def to_dict(result: Any) -> Any:
    return result.to_dict() if hasattr(result, "to_dict") else result


def _finish_run(result: Any, out: console.Output,
                sql: str | None = None) -> int:
    """A run the api returned: it succeeded (a failed one raises
    StepFailed, which carries its Run to the error document)."""
    if out.json:
        doc = to_dict(result)
        if sql is not None:
            doc["sql"] = sql
        out.document(doc)
    # Like upstream, populate prints nothing on stdout; its report and
    # the summary go with the other messages.
    for line in result.lines():
        out.message(line)
    return exceptions.ExitCode.OK


def _render(result: Any, out: console.Output,
            lines: list[str] | None = None) -> int:
    """``result`` as a JSON document, else its text lines on stdout."""
    if out.json:
        out.document(to_dict(result))
        return exceptions.ExitCode.OK
    for line in result.lines() if lines is None else lines:
        out.line(line)
    return exceptions.ExitCode.OK


# -- commands --------------------------------------------------------------

def _api():
    from mistral_db_flows import api

    return api


def run_current(args: Any, settings: Any, out: console.Output) -> int:
    api = _api()
    result = api.current(settings)
    if _arg(args, "show_details") and not out.json:
        from mistral_db_flows import urls

        return _render(result, out, result.verbose_lines(
            urls.masked(settings.database_url), api.history(settings)))
    return _render(result, out)


def _run_revision_list(infos: list[Any], out: console.Output,
                       branches: bool = False) -> int:
    if out.json:
        out.document({"revisions": [to_dict(info) for info in infos]})
        return exceptions.ExitCode.OK
    for info in infos:
        for line in info.lines(children=branches):
            out.line(line)
    return exceptions.ExitCode.OK


def run_history(args: Any, settings: Any, out: console.Output) -> int:
    return _run_revision_list(_api().history(settings), out)


def run_branches(args: Any, settings: Any, out: console.Output) -> int:
    return _run_revision_list(_api().branches(settings), out, True)


def run_check_migration(args: Any, settings: Any,
                        out: console.Output) -> int:
    return _render(_api().check_migration(settings), out)


def run_status(args: Any, settings: Any, out: console.Output) -> int:
    result = _api().status(settings)
    _render(result, out)
    if result.upgrade_needed:
        return exceptions.ExitCode.UPGRADE_NEEDED
    return exceptions.ExitCode.OK


def _with_safety(args: Any, settings: Any, out: console.Output, *,
                 dumps: bool = True) -> Any:
    """Settings with this command's --on-failure / --backup /
    --no-backup / --refuse-if-connected; ``dumps``: the command takes a
    backup at all (stamp and populate undo their own writes instead, so
    --no-backup changes nothing)."""
    changes: dict[str, Any] = {}
    if _arg(args, "on_failure"):
        changes["on_failure"] = args.on_failure
    if _arg(args, "remove_missing"):
        changes["populate_remove_missing"] = True
    if _arg(args, "backup"):
        changes["backup"] = args.backup
    if _arg(args, "refuse_if_connected"):
        changes["refuse_if_connected"] = True
    if _arg(args, "keep_revert_data"):
        changes["keep_revert_data"] = True
    if _arg(args, "no_backup"):
        changes["backup"] = "none"
    if _arg(args, "no_backup") and dumps:
        out.message("%s: warning: --no-backup: no backup is taken, so a "
                    "failure stops and leaves the database as it is"
                    % PROG)
    return dataclasses.replace(settings, **changes) if changes \
        else settings


def run_upgrade(args: Any, settings: Any, out: console.Output) -> int:
    target, delta = _arg(args, "revision"), _arg(args, "delta")
    if target is None and delta is None:
        raise exceptions.UsageError(
            "You must provide a revision or relative delta (e.g. 'upgrade "
            "head', 'upgrade 030', 'upgrade +1' or 'upgrade --delta 1')")
    if target is not None and delta is not None:
        raise exceptions.UsageError(
            "give either a revision or --delta, not both")
    settings = _with_safety(args, settings, out)
    return _offline_or_online(
        lambda **kw: _api().upgrade(settings, target, delta=delta, **kw),
        args, out)


def run_downgrade(args: Any, settings: Any, out: console.Output) -> int:
    target = _arg(args, "revision")
    if not target:
        raise exceptions.UsageError(
            "downgrade needs a target (e.g. 'downgrade 040', 'downgrade "
            "-1' or 'downgrade base'); nothing was changed")
    settings = _with_safety(args, settings, out, dumps=False)
    return _offline_or_online(
        lambda **kw: _api().downgrade(settings, target, **kw), args, out)


def run_drop_revert_data(args: Any, settings: Any,
                         out: console.Output) -> int:
    dropped = _api().drop_revert_data(settings)
    if out.json:
        out.document({"dropped": dropped})
    elif dropped:
        out.message("dropped the revert data kept for %s: `downgrade` "
                    "can no longer undo those that destroyed or rewrote "
                    "data" % " ".join(sorted(dropped)))
    else:
        out.message("no revert data was kept")
    return exceptions.ExitCode.OK


def run_stamp(args: Any, settings: Any, out: console.Output) -> int:
    revision = _arg(args, "revision")
    if not revision:
        # Upstream empties the version table here; never do that.
        raise exceptions.UsageError(
            "stamp needs a revision (e.g. 'stamp head'); nothing was "
            "changed")
    settings = _with_safety(args, settings, out, dumps=False)
    return _offline_or_online(
        lambda **kw: _api().stamp(settings, revision, **kw), args, out)


def _offline_or_online(call: Callable[..., Any], args: Any,
                       out: console.Output) -> int:
    if not _arg(args, "sql"):
        return _finish_run(call(progress=out.progress), out)
    if out.json:
        buffer = io.StringIO()
        result = call(sql=True, output=buffer)
        return _finish_run(result, out, sql=buffer.getvalue())
    result = call(sql=True, output=out.stdout)
    return _finish_run(result, out)


def run_revision(args: Any, settings: Any, out: console.Output) -> int:
    message = _arg(args, "message")
    if not message:
        raise exceptions.UsageError(
            "revision needs a message: -m 'what it changes'")
    result = _api().revision(settings, message,
                             autogenerate=bool(_arg(args, "autogenerate")),
                             rev_id=_arg(args, "rev_id"))
    if out.json:
        out.document(to_dict(result))
    else:
        out.line(str(_arg(result, "path", "")))
        out.message("revision: generated %s" % result.revision)
    return exceptions.ExitCode.OK


def _run_operation(name: str) -> Callable[[Any, Any, console.Output], int]:
    def run(args: Any, settings: Any, out: console.Output) -> int:
        settings = _with_safety(args, settings, out, dumps=False)
        return _finish_run(getattr(_api(), name)(
            settings, progress=out.progress), out)

    run.__name__ = "run_" + name
    return run


def run_verify(args: Any, settings: Any, out: console.Output) -> int:
    return _finish_run(_api().verify(settings, progress=out.progress), out)


def run_abandon(args: Any, settings: Any, out: console.Output) -> int:
    forgotten = _api().abandon(settings)
    if out.json:
        out.document({"abandoned": forgotten})
    elif forgotten:
        out.message("abandoned the interrupted %s (stopped at step %s); "
                    "the database was left as it is"
                    % (forgotten["operation"], forgotten["step"]))
        if forgotten.get("backup"):
            out.message("its backup, from before that run, is kept: %s "
                        "(docs/safety.md: restoring a backup by hand)"
                        % forgotten["backup"])
    else:
        out.message("no interrupted run to abandon")
    return exceptions.ExitCode.OK


def run_backups(args: Any, settings: Any, out: console.Output) -> int:
    return _render(_api().backups(settings), out)


arguments.COMMANDS.update({
    "current": arguments.Command(
        "show the revision the database is at", arguments.args_current,
        run_current),
    "history": arguments.Command(
        "list revisions, newest first", arguments.no_args, run_history),
    "branches": arguments.Command(
        "list branch points (none in a sound chain)", arguments.no_args,
        run_branches),
    "check_migration": arguments.Command(
        "check the migrations form one unbroken chain with one head",
        arguments.no_args, run_check_migration),
    "upgrade": arguments.Command(
        "upgrade the database (or print the SQL)", arguments.args_upgrade,
        run_upgrade),
    "downgrade": arguments.Command(
        "undo revisions down to an older one (or print the SQL)",
        arguments.args_downgrade, run_downgrade),
    "populate": arguments.Command(
        "load Mistral's standard workflows and actions",
        arguments.args_populate_workflows, _run_operation("populate")),
    "populate_actions": arguments.Command(
        "load Mistral's standard actions", arguments.args_populate,
        _run_operation("populate_actions")),
    "stamp": arguments.Command(
        "record a revision without running migrations",
        arguments.args_stamp, run_stamp),
    "revision": arguments.Command(
        "write a new migration file", arguments.args_revision,
        run_revision),
    "status": arguments.Command(
        "current revision, head, pending steps; exit 0 at head, 10 when "
        "an upgrade is needed", arguments.add_sql_refusal, run_status),
    "verify": arguments.Command(
        "compare the database with the schema of its revision",
        arguments.add_sql_refusal, run_verify),
    "abandon": arguments.Command(
        "forget an interrupted run (the database is left as it is)",
        arguments.add_sql_refusal, run_abandon),
    "drop_revert_data": arguments.Command(
        "drop the revert data upgrades kept for downgrade",
        arguments.add_sql_refusal, run_drop_revert_data),
    "backups": arguments.Command(
        "list the backups taken before changes (database, kind, size, "
        "date, path)", arguments.add_sql_refusal, run_backups),
})

OFFLINE_COMMANDS = frozenset({"upgrade", "stamp", "downgrade"})
