"""Concurrent edits: after the export, another admin changes 100 users on the platform. The sheet
edits 300 users, those 100 among them. Sync reports exactly those 100 as conflicts and overwrites
none of them; skipping them, it applies the other 200. Platform changes to users the sheet did
not edit are not conflicts and are left alone.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from openpyxl import load_workbook

from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.sandbox import Sandbox

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USERS, EDITED, CONCURRENT, ELSEWHERE = 400, 200, 100, 20


def _titles(url: str) -> dict[str, tuple[str, str | None]]:
    """userName -> (id, title) of every user, read directly from the platform."""
    out: dict[str, tuple[str, str | None]] = {}
    start = 1
    while True:
        params: dict[str, str | int] = {"startIndex": start, "count": 1000, "attributes": "userName,title"}
        page = requests.get(f"{url}/Users", params=params, timeout=30).json()
        for user in page.get("Resources", []):
            out[user["userName"]] = (user["id"], user.get("title"))
        start += len(page.get("Resources", []))
        if not page.get("Resources") or start > int(page["totalResults"]):
            return out


def _set_title(url: str, user_id: str, title: str) -> None:
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "title", "value": title}]}
    answer = requests.patch(f"{url}/Users/{user_id}", json=body, headers={"Content-Type": "application/scim+json"}, timeout=30)
    assert answer.status_code in (200, 204), answer.text


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_platform_changes_after_export_are_conflicts_never_overwritten(
    fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROSTERBOOK_TOKEN", raising=False)
    sandbox = fresh_sandbox(users=USERS, seed=9)
    book = tmp_path / "book.xlsx"
    assert _cli(["export", str(book), "--platform", sandbox.url], capsys)[0] == 0

    # The user edits 300 rows' Job title in the sheet.
    wb = load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    rows = {str(ws.cell(r, col["Username"]).value): r for r in range(2, ws.max_row + 1)}
    rng = random.Random(4)
    names = sorted(rows)
    edited = rng.sample(names, EDITED + CONCURRENT)
    for name in edited:
        ws.cell(rows[name], col["Job title"]).value = f"Sheet title for {name}"
    wb.save(book)

    # Meanwhile another admin changes 100 of those users on the platform, and 20 users the sheet leaves alone.
    concurrent = set(rng.sample(edited, CONCURRENT))
    elsewhere = set(rng.sample([n for n in names if n not in edited], ELSEWHERE))
    before = _titles(sandbox.url)
    for name in sorted(concurrent | elsewhere):
        _set_title(sandbox.url, before[name][0], f"Platform title for {name}")
    platform_now = _titles(sandbox.url)

    # Preview: exactly those 100 rows are conflicts; the other 200 are updates.
    code, out, _ = _cli(["preview", str(book), "--json"], capsys)
    plan: dict[str, Any] = json.loads(out)
    assert code == 1  # conflicts block
    assert plan["counts"]["conflict"] == CONCURRENT
    assert plan["counts"]["update"] == EDITED
    conflict_rows = sorted(c["row"] for c in plan["changes"] if c["action"] == "conflict")
    assert conflict_rows == sorted(rows[n] for n in concurrent)
    assert {c["key"] for c in plan["changes"] if c["action"] == "conflict"} == concurrent

    # Sync refuses while conflicts remain, and sends nothing at all.
    sent_before = [r for r in sandbox.request_log if r.method in ("POST", "PATCH", "PUT", "DELETE")]
    code, out, err = _cli(["sync", str(book), "--yes"], capsys)
    assert code == 1
    assert f"{CONCURRENT} rows were changed on the platform since the export" in out + err
    assert "Traceback" not in out + err
    assert [r for r in sandbox.request_log if r.method in ("POST", "PATCH", "PUT", "DELETE")] == sent_before
    assert _titles(sandbox.url) == platform_now

    # Skipping the conflicts, sync applies the rest and overwrites none of them.
    spec = ",".join(str(r) for r in conflict_rows)
    code, out, err = _cli(["sync", str(book), "--yes", "--skip-rows", spec, "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["confirmed"] == EDITED and result["failed"] == 0
    after = _titles(sandbox.url)
    for name in names:
        if name in concurrent or name in elsewhere:
            assert after[name][1] == f"Platform title for {name}", name  # the other admin's change stands
        elif name in edited:
            assert after[name][1] == f"Sheet title for {name}", name
        else:
            assert after[name] == before[name], name
    assert len(after) == USERS

    # The conflicts are still reported (not silently dropped) on the next preview.
    code, out, _ = _cli(["preview", str(book), "--json"], capsys)
    again = json.loads(out)
    assert again["counts"]["conflict"] == CONCURRENT
    assert again["counts"]["update"] == 0
