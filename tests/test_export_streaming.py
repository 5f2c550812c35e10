"""An export maps each page of users as it arrives: same users, same order and same cells as mapping after the last page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from rosterbook import app
from rosterbook.core.scim_map import ENTERPRISE_USER
from rosterbook.sandbox import Sandbox
from sync_client.scim import ScimClient

USERS = 2_300  # three pages of the client's 1,000


@pytest.fixture
def paged(fresh_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox with more users than one page holds."""
    return fresh_sandbox(users=USERS, seed=5, token="stream-token-not-a-secret")


def test_pages_reach_the_callback_in_order_each_user_once(paged: Sandbox) -> None:
    calls: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
    with ScimClient(paged.url, token="stream-token-not-a-secret") as client:
        streamed = client.export_users(on_users=lambda page, groups: calls.append((page, groups)))
        plain = client.export_users()
    assert len(calls) >= 3
    handed = [u["id"] for page, _ in calls for u in page]
    assert handed == [u["id"] for u in plain.users]
    assert len(set(handed)) == USERS
    assert streamed.users == [] and streamed.total == plain.total == USERS  # handed over, not kept as well
    assert all(groups is streamed.groups for _, groups in calls)  # every group known before the first page
    assert sorted(g["id"] for g in streamed.groups) == sorted(g["id"] for g in plain.groups) and streamed.groups


def test_managers_on_later_pages_are_named(paged: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROSTERBOOK_TOKEN", "stream-token-not-a-secret")
    monkeypatch.setenv("ROSTERBOOK_PLATFORM", paged.url)  # the token is bound to this platform
    with ScimClient(paged.url, token="stream-token-not-a-secret") as client:
        users = client.export_users().users
    position = {u["id"]: i for i, u in enumerate(users)}
    name_of = {u["id"]: u["userName"] for u in users}
    manager_of = {u["userName"]: ((u.get(ENTERPRISE_USER) or {}).get("manager") or {}).get("value") for u in users}
    later = [u for u in users if manager_of[u["userName"]] in position and position[manager_of[u["userName"]]] // 1000 > position[u["id"]] // 1000]
    assert later, "the seed should give some users a manager listed on a later page"

    book = tmp_path / "users.xlsx"
    assert app.export_workbook(book, platform=paged.url)["rows"] == USERS
    workbook = openpyxl.load_workbook(book, read_only=True)
    try:
        rows = list(workbook["Users"].iter_rows(values_only=True))
    finally:
        workbook.close()
    header = list(rows[0])
    user_col, manager_col = header.index("Username"), header.index("Manager")
    shown = {r[user_col]: r[manager_col] for r in rows[1:] if r[user_col]}
    assert [r[user_col] for r in rows[1:] if r[user_col]] == [u["userName"] for u in users]  # the platform's order
    for user in users:
        mid = manager_of[user["userName"]]
        assert shown[user["userName"]] == (name_of.get(mid) if mid else None)
