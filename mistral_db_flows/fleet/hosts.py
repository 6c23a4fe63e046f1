"""Targets: names a job carries, and each host's own configuration.

A job says "upgrade target ``region-one``", and every conductor host
reads that target's ``[database] connection`` (and any ``[db_manage]``
option it overrides) from ``<targets_dir>/region-one.conf``, after the
conductor's own config files. So secrets stay in files on the
conductor hosts; what travels (the job, the logbook, the jobboard) is
the :class:`Host` below (paths only) and the target's name.
"""
from __future__ import annotations

import dataclasses
import os
import re

from mistral_db_flows import conf
from mistral_db_flows import exceptions

# A file name in one directory: no separators, no leading dot.
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
TARGET_SUFFIX = ".conf"


def check_target_name(target: str) -> str:
    """``target`` when it can name a file in the targets directory."""
    if not isinstance(target, str) or not _TARGET_NAME.match(target) \
            or ".." in target:
        raise exceptions.UsageError(
            "target %r: use letters, digits, '.', '_' and '-' (it names "
            "the file <targets-dir>/<target>%s on the conductors)"
            % (target, TARGET_SUFFIX))
    return target


@dataclasses.dataclass(frozen=True)
class Host:
    """Where a conductor host reads its configuration: paths only.

    JSON-able (``to_dict``/``from_dict``): a conductor hands it to the
    job's flow through the engine's store, so it is recorded in the
    job's logbook, and must never hold a URL or a secret.
    """

    targets_dir: str
    config_files: tuple[str, ...] = ()
    config_dirs: tuple[str, ...] = ()

    def target_file(self, target: str) -> str:
        return os.path.join(self.targets_dir,
                            check_target_name(target) + TARGET_SUFFIX)

    def to_dict(self) -> dict:
        return {"targets_dir": self.targets_dir,
                "config_files": list(self.config_files),
                "config_dirs": list(self.config_dirs)}

    @classmethod
    def from_dict(cls, value: dict) -> "Host":
        return cls(targets_dir=value["targets_dir"],
                   config_files=tuple(value.get("config_files") or ()),
                   config_dirs=tuple(value.get("config_dirs") or ()))


def settings_for(host: Host, target: str) -> conf.Settings:
    """The Settings of ``target`` on this host: the host's config files
    and directories, then the target's file (which wins)."""
    from oslo_config import cfg

    path = host.target_file(target)
    if not os.path.isfile(path):
        raise exceptions.ConfigError(
            "target %r is not configured on this host: %s does not exist"
            % (target, path), path=path)
    argv: list[str] = []
    for name in host.config_files:
        argv += ["--config-file", name]
    for name in host.config_dirs:
        argv += ["--config-dir", name]
    argv += ["--config-file", path]
    opts = cfg.ConfigOpts()
    conf.register_opts(opts)
    try:
        opts(argv, project="mistral", default_config_files=[],
             default_config_dirs=[])
    except cfg.Error as exc:
        raise exceptions.ConfigError(
            "target %r: %s" % (target, exc), path=path) from exc
    if not opts.database.connection:
        # The embedded default (a file in the working directory) is
        # never what a fleet target means.
        raise exceptions.ConfigError(
            "target %r: %s sets no [database] connection" % (target, path),
            path=path)
    return conf.settings_from_conf(opts)
