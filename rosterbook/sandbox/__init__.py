"""The sandbox platform: a real SCIM 2.0 server on this machine (scim2-server + SQLite + a demo organisation).

``start_sandbox()`` serves it from a background thread; ``embedded()`` is the per-user sandbox the
CLI uses when no platform is configured; ``rosterbook sandbox`` serves it in the foreground.
"""

from rosterbook.sandbox.schema import ACCOUNT_STATUSES, ENTERPRISE_SCHEMA, GROUP_SCHEMA, HR_SCHEMA, USER_SCHEMA, build_provider
from rosterbook.sandbox.seed import DEFAULT_USERS, demo_organisation
from rosterbook.sandbox.server import (
    DB_NAME,
    Fault,
    Faults,
    RequestRecord,
    Sandbox,
    default_home,
    embedded,
    is_loopback,
    seed_if_empty,
    start_sandbox,
)
from rosterbook.sandbox.storage import SqliteStorage

__all__ = [
    "ACCOUNT_STATUSES",
    "DB_NAME",
    "DEFAULT_USERS",
    "ENTERPRISE_SCHEMA",
    "GROUP_SCHEMA",
    "HR_SCHEMA",
    "USER_SCHEMA",
    "Fault",
    "Faults",
    "RequestRecord",
    "Sandbox",
    "SqliteStorage",
    "build_provider",
    "default_home",
    "demo_organisation",
    "embedded",
    "is_loopback",
    "seed_if_empty",
    "start_sandbox",
]
