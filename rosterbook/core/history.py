"""What each sync changed, row by row: the record an undo is built from.

Every sync has a sync id, its start time and a short random part (``20261123-101502-3f9a0c``), shown in
the Sync log and the sync's output. For every row it sent (confirmed by the platform, partly applied,
or written to an upload file) it records a ``Step``: the user (row id, key, platform id), the action,
and for every field it changed the value before and after. A create also keeps the values it created,
a deactivation the values the user had. Write-only values (passwords) are never recorded: only that
one was set. The workbook keeps the steps in a very hidden sheet (``rosterbook.history``); this module
is the plain data and its JSON form.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rosterbook.core.diff import SET_MARK, Change
from rosterbook.core.table import SnapshotRow

SYNC_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
"""A sync id: ``YYYYMMDD-HHMMSS-`` (the local time it started) and six hex digits."""


def new_sync_id(now: dt.datetime | None = None, token: str | None = None) -> str:
    """A fresh sync id: the time (sorts in time order) and a short random part (two syncs in one second differ)."""
    moment = now or dt.datetime.now().astimezone()
    return f"{moment:%Y%m%d-%H%M%S}-{token or secrets.token_hex(3)}"


def sync_time(sync_id: str) -> str:
    """``2026-11-23 10:15:02``: when the sync with this id started (as the Sync log writes times)."""
    try:
        moment = dt.datetime.strptime(sync_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return sync_id
    return f"{moment:%Y-%m-%d %H:%M:%S}"


@dataclass(frozen=True)
class SyncInfo:
    """One sync as a whole: where it sent, what it undid, and the snapshot it started from."""

    sync_id: str
    platform: str
    """``scim`` or ``csv``: the connector's name."""
    platform_url: str | None
    dialect: str
    undo_of: str | None = None
    """The sync this one undid (an undo is an ordinary sync)."""
    snapshot: str | None = None
    """The snapshot's digest when the sync began: a CSV platform's snapshot changes only by an export, so an equal
    digest later means nothing was exported since (the platform's state after the upload is unknown)."""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"kind": "sync", "platform": self.platform, "url": self.platform_url, "dialect": self.dialect, "undo_of": self.undo_of,
                "snapshot": self.snapshot}

    @classmethod
    def from_json(cls, sync_id: str, data: Mapping[str, Any]) -> SyncInfo:
        """The stored form read back (ValueError when it is not one)."""
        if data.get("kind") != "sync" or not isinstance(data.get("platform"), str) or not isinstance(data.get("dialect"), str):
            raise ValueError("not a sync line")
        return cls(sync_id, data["platform"], _text(data.get("url")), data["dialect"], _text(data.get("undo_of")), _text(data.get("snapshot")))


@dataclass(frozen=True)
class Step:
    """What one sync did to one user."""

    sync_id: str
    row: int | None
    """The sheet row at the time (rows move: the user is found again by platform id, row id or key)."""
    row_id: str | None
    key: str
    """The key after the sync."""
    action: str
    """``create``, ``update``, ``archive``, ``rename`` or ``deactivate``."""
    outcome: str
    """``ok`` (confirmed), ``partial`` (only what went through is recorded) or ``written`` (in an upload file)."""
    resource_id: str | None = None
    old_key: str | None = None
    fields: Mapping[str, tuple[str | None, str | None]] = field(default_factory=dict)
    """Every field changed, (before, after), canonical text; never a write-only value."""
    values: Mapping[str, str | None] = field(default_factory=dict)
    """A create: the values created; a deactivation: the values the user had (to restore them)."""
    secrets: tuple[str, ...] = ()
    """Write-only columns the sync set (a password: never read back, so never undone)."""
    invite: bool = False
    """The platform may have sent an invitation e-mail."""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        out: dict[str, Any] = {"kind": "row", "row": self.row, "row_id": self.row_id, "key": self.key, "action": self.action,
                               "outcome": self.outcome, "id": self.resource_id, "fields": {n: list(f) for n, f in self.fields.items()}}
        if self.old_key is not None:
            out["old_key"] = self.old_key
        if self.values:
            out["values"] = dict(self.values)
        if self.secrets:
            out["secrets"] = list(self.secrets)
        if self.invite:
            out["invite"] = True
        return out

    @classmethod
    def from_json(cls, sync_id: str, data: Mapping[str, Any]) -> Step:
        """The stored form read back (ValueError when it is not one)."""
        if data.get("kind") != "row" or not isinstance(data.get("key"), str) or not isinstance(data.get("action"), str):
            raise ValueError("not a row line")
        fields = data.get("fields") or {}
        values = data.get("values") or {}
        if not isinstance(fields, dict) or not all(isinstance(f, list) and len(f) == 2 and all(_is_text(v) for v in f) for f in fields.values()):
            raise ValueError("fields must map a column to [before, after]")
        if not isinstance(values, dict) or not all(_is_text(v) for v in values.values()):
            raise ValueError("values must be texts")
        row = data.get("row")
        return cls(sync_id, row if isinstance(row, int) else None, _text(data.get("row_id")), data["key"], data["action"], str(data.get("outcome")),
                   _text(data.get("id")), _text(data.get("old_key")), {str(n): (f[0], f[1]) for n, f in fields.items()},
                   {str(n): v for n, v in values.items()}, tuple(str(s) for s in data.get("secrets") or ()), bool(data.get("invite")))


@dataclass(frozen=True)
class SyncRecord:
    """One sync and its steps, as the workbook holds them."""

    info: SyncInfo
    steps: tuple[Step, ...]

    @property
    def sync_id(self) -> str:
        return self.info.sync_id

    @property
    def time(self) -> str:
        return sync_time(self.info.sync_id)


def _is_text(value: object) -> bool:
    return value is None or isinstance(value, str)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def step_of(change: Change, outcome: str, sync_id: str, *, resource_id: str | None = None, write_only: Iterable[str] = ()) -> Step:
    """The step of a change the platform confirmed (or that went into an upload file)."""
    hidden = set(write_only) | set(change.secrets)
    fields = {name: (fc.before, fc.after) for name, fc in change.fields.items() if name not in hidden and fc.after != SET_MARK}
    values: Mapping[str, str | None] = {}
    if change.action in ("create", "deactivate"):
        values = {name: value for name, value in change.values.items() if name not in hidden}
    return Step(sync_id, change.row, change.row_id, change.key, change.action, outcome, resource_id or change.resource_id, change.old_key,
                fields, values, tuple(sorted(change.secrets)), change.invite)


def step_between(before: SnapshotRow | None, after: SnapshotRow, sync_id: str, row: int | None, *, action: str = "update",
                 resource_id: str | None = None) -> Step | None:
    """The step that took a user from one snapshot entry to another (a row re-based on what the platform already held)."""
    old = before.values if before is not None else {}
    names = [n for n in dict.fromkeys((*old, *after.values)) if old.get(n) != after.values.get(n)]
    if not names and (before is None or before.key == after.key):
        return None
    fields = {n: (old.get(n), after.values.get(n)) for n in names}
    renamed = before is not None and before.key != after.key
    if before is None:
        action = "create"
    elif action == "update" and renamed:
        action = "rename"
    return Step(sync_id, row, after.row_id, after.key, action, "ok", resource_id or after.resource_id, before.key if renamed and before else None,
                fields, dict(after.values) if before is None else {})
