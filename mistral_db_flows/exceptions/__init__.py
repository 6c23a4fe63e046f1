"""The one error family of mistral-db-flows, and its exit codes.

Every error names its ``exit_code`` (an :class:`ExitCode`) and carries
its facts as attributes, each declared on its class; ``cli`` turns an
error into one line on stderr and that exit code. README's exit-code
table lists :class:`ExitCode`, docs/api.md's error table these classes
(a unit test keeps them equal).

This package is the one import path: ``from mistral_db_flows import
exceptions``, then ``exceptions.StepFailed``. Its private modules only
keep each part short: ``_base`` (the exit codes and the base class),
``_input`` (what the operator asked for), ``_database`` (the server and
its lock), ``_run`` (steps, backups, the logbook) and ``_populate``
(definition files) and ``_fleet`` (the jobboard and its jobs).
"""
from __future__ import annotations

from mistral_db_flows.exceptions._base import ExitCode
from mistral_db_flows.exceptions._base import MistralDbError
from mistral_db_flows.exceptions._database import ConnectionLost
from mistral_db_flows.exceptions._database import DatabaseUnreachable
from mistral_db_flows.exceptions._database import LockError
from mistral_db_flows.exceptions._database import LockLost
from mistral_db_flows.exceptions._database import LockTimeout
from mistral_db_flows.exceptions._database import LockWaitTimeout
from mistral_db_flows.exceptions._database import OthersConnected
from mistral_db_flows.exceptions._database import SchemaConflict
from mistral_db_flows.exceptions._database import describe_session
from mistral_db_flows.exceptions._database import is_connection_lost
from mistral_db_flows.exceptions._fleet import JobFailed
from mistral_db_flows.exceptions._fleet import JobboardError
from mistral_db_flows.exceptions._input import BadTarget
from mistral_db_flows.exceptions._input import BadUrl
from mistral_db_flows.exceptions._input import BranchError
from mistral_db_flows.exceptions._input import ConfigError
from mistral_db_flows.exceptions._input import DriverMissing
from mistral_db_flows.exceptions._input import PluginError
from mistral_db_flows.exceptions._input import ReadOnlyMigrations
from mistral_db_flows.exceptions._input import RevertDataMissing
from mistral_db_flows.exceptions._input import UnknownRevision
from mistral_db_flows.exceptions._input import UnsupportedRevisionFile
from mistral_db_flows.exceptions._input import UsageError
from mistral_db_flows.exceptions._populate import DefinitionError
from mistral_db_flows.exceptions._populate import DuplicateDefinition
from mistral_db_flows.exceptions._populate import PopulateError
from mistral_db_flows.exceptions._populate import SchemaNotReady
from mistral_db_flows.exceptions._populate import SourceError
from mistral_db_flows.exceptions._run import BackupError
from mistral_db_flows.exceptions._run import LogbookError
from mistral_db_flows.exceptions._run import ResumeRefused
from mistral_db_flows.exceptions._run import RestoreError
from mistral_db_flows.exceptions._run import StepFailed
from mistral_db_flows.exceptions._run import StepHalted
from mistral_db_flows.exceptions._run import VerifyFailed

__all__ = [
    "BackupError", "BadTarget", "BadUrl", "BranchError", "ConfigError",
    "ConnectionLost", "DatabaseUnreachable", "DefinitionError",
    "DriverMissing", "DuplicateDefinition", "ExitCode", "JobFailed",
    "JobboardError", "LockError", "LockLost", "LockTimeout",
    "LockWaitTimeout", "LogbookError", "MistralDbError", "OthersConnected",
    "PluginError", "PopulateError", "ReadOnlyMigrations", "ResumeRefused",
    "RestoreError", "RevertDataMissing", "SchemaConflict",
    "SchemaNotReady", "SourceError", "StepFailed", "StepHalted",
    "UnknownRevision", "UnsupportedRevisionFile", "UsageError",
    "VerifyFailed", "describe_session",
    "is_connection_lost",
]
