"""Auditing a sync against the platform's raw state: what the server stores, never what rosterbook reads back.

The fault-injection tests record, after every run of ``sync``, the sandbox's stored JSON of every
user (straight from its SQLite storage) and the Sync log entries that run added. ``audit`` then
checks each entry against that run's raw state:

- "ok": the platform holds exactly the intended user (every stored attribute, not only the edited
  one), under the logged platform id and version;
- "failed": the platform does not hold the change, unless the message says the platform's answer
  was lost (then the change may have been applied, and the next run recognises it);
- every user the sheet did not change is untouched (same document, same version), and every changed
  user is either exactly as exported or exactly as intended, at every run boundary.

Duplicates are counted on the raw resources: userName, every email value and externalId, case-insensitively.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rosterbook.sandbox import HR_SCHEMA, USER_SCHEMA, Sandbox

Doc = dict[str, Any]

UNKNOWN_OUTCOME = re.compile(r"did not answer usefully|may have been (created|applied)")
"""Failure messages that say the platform's answer was lost: the change may have been applied."""


def raw_users(sandbox: Sandbox) -> dict[str, Doc]:
    """Every user as the sandbox stores it (its SQLite storage's JSON), by id."""
    user_type = next(rt for rt in sandbox.storage.provider.resource_types if rt.name == "User")
    _, documents = sandbox.storage.documents(user_type, 0, None)
    users = [json.loads(text) for text in documents]
    return {str(u["id"]): u for u in users}


def duplicates(users: Mapping[str, Doc]) -> Counter[tuple[str, str]]:
    """(attribute, value) pairs held by more than one user: userName, email values, externalId (case-insensitive)."""
    seen: Counter[tuple[str, str]] = Counter()
    for doc in users.values():
        seen["userName", str(doc["userName"]).casefold()] += 1
        for email in {str(e.get("value", "")).casefold() for e in doc.get("emails") or ()}:
            seen["emails", email] += 1
        if doc.get("externalId"):
            seen["externalId", str(doc["externalId"]).casefold()] += 1
    return Counter({pair: n - 1 for pair, n in seen.items() if n > 1})


def _bare(doc: Doc, *drop: str) -> Doc:
    return {k: v for k, v in doc.items() if k not in ("meta", *drop)}


@dataclass(frozen=True)
class Intent:
    """One user's intended change, as the raw document the platform should end up holding."""

    kind: str
    """create, update, archive or rename."""
    key: str
    """The userName after the change."""
    user_id: str | None
    """The platform id (None for a create)."""
    before: Doc | None
    """The stored document without meta (None for a create)."""
    after: Doc
    """The document the platform must hold (without meta; without id for a create)."""


def update_intent(before: Doc, title: str) -> Intent:
    after = _bare(before) | {"title": title}
    return Intent("update", before["userName"], before["id"], _bare(before), after)


def archive_intent(before: Doc) -> Intent:
    after = copy.deepcopy(_bare(before))
    after[HR_SCHEMA]["accountStatus"] = "Archived"
    after["active"] = False  # the sandbox: active only while accountStatus is Active
    return Intent("archive", before["userName"], before["id"], _bare(before), after)


def rename_intent(before: Doc, new_name: str) -> Intent:
    return Intent("rename", new_name, before["id"], _bare(before), _bare(before) | {"userName": new_name})


def create_intent(user_name: str, given: str, family: str, status: str, title: str) -> Intent:
    """The document a create from the sheet's Username, First/Last name, Email (= Username), Status and Job title makes."""
    after: Doc = {
        "schemas": [USER_SCHEMA, HR_SCHEMA],
        "userName": user_name,
        "name": {"familyName": family, "givenName": given},
        "title": title,
        "active": status == "Active",
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        HR_SCHEMA: {"accountStatus": status},
    }
    return Intent("create", user_name, None, None, after)


@dataclass
class RunRecord:
    """One run of sync: how it ended, the raw state after it, and the Sync log entries it added."""

    number: int
    stopped: str | None
    """The error that stopped the run early, or None."""
    sent: int | None
    """Rows the run sent (None when it stopped)."""
    state: dict[str, Doc]
    entries: list[dict[str, Any]]


@dataclass
class Audit:
    """What the audit counted."""

    ok: int = 0
    failed: int = 0
    failed_applied: int = 0
    """Failed entries whose change the platform nevertheless holds (the answer was lost, and the message says so)."""
    confirmed: dict[str, int] = field(default_factory=dict)
    """Key -> the run that logged it ok (once: a confirmed change is never sent or logged again)."""


class StateChecker:
    """Decides, for a raw state, whether each intended change is applied; refuses any third state."""

    def __init__(self, original: Mapping[str, Doc], intents: Sequence[Intent]) -> None:
        self.original = original
        self.intents = {i.key.casefold(): i for i in intents}
        self.changed_ids = {i.user_id for i in intents if i.user_id is not None}
        self.created = {i.key.casefold() for i in intents if i.kind == "create"}

    def intent(self, key: str) -> Intent:
        found = self.intents.get(key.casefold())
        assert found is not None, f"the Sync log names {key!r}, a user the sheet did not change"
        return found

    def holder(self, intent: Intent, state: Mapping[str, Doc]) -> Doc | None:
        """The stored document the intent is about (a create: the user with its userName, if any)."""
        if intent.user_id is not None:
            doc = state.get(intent.user_id)
            assert doc is not None, f"{intent.key!r}: user {intent.user_id} is gone from the platform"
            return doc
        matches = [d for d in state.values() if str(d["userName"]).casefold() == intent.key.casefold()]
        assert len(matches) <= 1, f"{intent.key!r} was created {len(matches)} times"
        return matches[0] if matches else None

    def applied(self, intent: Intent, state: Mapping[str, Doc]) -> bool:
        """True when the platform holds exactly the intended user, False when exactly the exported one."""
        doc = self.holder(intent, state)
        if doc is None:
            return False
        bare = _bare(doc, "id") if intent.user_id is None else _bare(doc)
        if bare == intent.after:
            return True
        assert bare == intent.before, f"{intent.key!r} is neither as exported nor as intended: {_difference(intent, bare)}"
        return False

    def check_state(self, state: Mapping[str, Doc], run: int) -> None:
        """Users the sheet did not change are untouched; nobody is missing; nobody unexpected appeared."""
        for uid, doc in self.original.items():
            assert uid in state, f"after run {run}: user {doc['userName']!r} ({uid}) was deleted"
            if uid not in self.changed_ids:
                assert state[uid] == doc, f"after run {run}: {doc['userName']!r} was changed, but the sheet did not change it"
        for uid, doc in state.items():
            if uid not in self.original:
                assert str(doc["userName"]).casefold() in self.created, f"after run {run}: an unexpected user {doc['userName']!r} appeared"
        for intent in self.intents.values():
            self.applied(intent, state)  # asserts one of the two states


def audit(checker: StateChecker, runs: Sequence[RunRecord]) -> Audit:
    """Check every Sync log entry of every run against the raw state right after that run."""
    result = Audit()
    for run in runs:
        checker.check_state(run.state, run.number)
        per_key = Counter(str(e["Key"]).casefold() for e in run.entries)
        repeated = [k for k, n in per_key.items() if n > 1]
        assert not repeated, f"run {run.number} logged {repeated[:3]} more than once"
        for entry in run.entries:
            intent = checker.intent(str(entry["Key"]))
            holds = checker.applied(intent, run.state)
            where = f"run {run.number}, Sync log {entry['Action']} {entry['Key']!r} ({entry['Outcome']}, {entry['Message']!r})"
            if entry["Outcome"] == "ok":
                assert holds, f"{where}: logged ok, but the platform does not hold the change"
                doc = checker.holder(intent, run.state)
                assert doc is not None
                assert entry["Platform id"] == doc["id"], f"{where}: logged platform id {entry['Platform id']!r}, the platform's is {doc['id']!r}"
                if entry["Version"] is not None:
                    assert entry["Version"] == doc["meta"]["version"], f"{where}: logged version {entry['Version']!r}, the platform's is {doc['meta']['version']!r}"
                assert intent.key not in result.confirmed, f"{where}: already logged ok in run {result.confirmed[intent.key]}"
                result.ok += 1
                result.confirmed[intent.key] = run.number
            else:
                assert entry["Outcome"] == "failed", f"{where}: unknown outcome"
                if holds:
                    assert UNKNOWN_OUTCOME.search(str(entry["Message"] or "")), f"{where}: logged failed, but the platform holds the change"
                    result.failed_applied += 1
                result.failed += 1
    return result


def _difference(intent: Intent, bare: Doc) -> str:
    wanted = intent.after
    keys = sorted(set(wanted) | set(bare) | set(intent.before or {}))
    return "; ".join(f"{k}: {bare.get(k)!r} (want {wanted.get(k)!r})" for k in keys if bare.get(k) != wanted.get(k))
