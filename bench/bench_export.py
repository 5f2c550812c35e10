"""Exporting 50,000 users over a 50 ms link into a workbook: rosterbook against paging by 100 plus openpyxl.

One sandbox of 50,000 users sits behind a loopback proxy adding 50 ms to every request
(``bench/_link.py``). Then, in the same run:

1. the peer: a straightforward script on plain ``requests`` that pages ``/Users`` (and
   ``/Groups``, for memberships) one page of 100 after the other, flattens each user into the
   same columns, and writes them with openpyxl (``Workbook()``, ``append``, ``save``);
2. rosterbook: ``app.export_workbook`` (the whole command: discovery, concurrent pages as large
   as the server allows, mapping, the Users sheet with its snapshot, lists, drop-downs, save).

Both workbooks must hold the same users. Target (issue 9, item 4): rosterbook at least 3x faster.
Run: ``.venv/bin/python bench/bench_export.py [--users 50000]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _link import far_sandbox, machine, session, use_token

from rosterbook import app

TARGET = 3.0
PEER_PAGE = 100
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
HR = "urn:rosterbook:params:scim:schemas:extension:hr:2.0:User"
HEADERS = ["Username", "First name", "Last name", "Email", "Status", "Job title", "Department", "Team", "Position", "Locations",
           "Manager", "Groups", "Roles", "Employee ID", "Phone", "Start date", "External ID", "id", "version"]


def peer_pages(base_url: str, path: str) -> list[dict[str, Any]]:
    """Every resource at ``path``, one page of 100 after the other."""
    s = session()
    out: list[dict[str, Any]] = []
    start = 1
    while True:
        response = s.get(f"{base_url}{path}", params={"startIndex": start, "count": PEER_PAGE}, timeout=120)
        response.raise_for_status()
        page = response.json()
        resources = page.get("Resources") or []
        out += resources
        start += len(resources)
        if not resources or start > int(page.get("totalResults") or 0):
            break
    s.close()
    return out


def _work(values: list[dict[str, Any]] | None, key: str) -> Any:
    for item in values or ():
        if item.get("type") == "work":
            return item.get(key)
    return (values or [{}])[0].get(key) if values else None


def peer_row(user: dict[str, Any], names: dict[str, str], groups: dict[str, list[str]]) -> list[Any]:
    """One user flattened into the peer's columns (what a hand-written export would do)."""
    ent, hr, name = user.get(ENTERPRISE) or {}, user.get(HR) or {}, user.get("name") or {}
    manager = (ent.get("manager") or {}).get("value")
    return [
        user.get("userName"), name.get("givenName"), name.get("familyName"), _work(user.get("emails"), "value"),
        hr.get("accountStatus") or ("Active" if user.get("active") else "Archived"), user.get("title"), ent.get("department"),
        hr.get("team"), hr.get("position"), "|".join(v.replace("|", "\\|") for v in hr.get("locations") or ()) or None,
        names.get(manager) if manager else None, "; ".join(sorted(groups.get(user["id"], ()))) or None,
        "; ".join(r.get("value", "") for r in user.get("roles") or ()) or None, ent.get("employeeNumber"),
        _work(user.get("phoneNumbers"), "value"), hr.get("startDate"), user.get("externalId"), user["id"], (user.get("meta") or {}).get("version"),
    ]


def peer_export(base_url: str, path: Path) -> int:
    """Sequential pages of 100, then a plain openpyxl write; returns the rows written."""
    users = peer_pages(base_url, "/Users")
    group_list = peer_pages(base_url, "/Groups")
    names = {u["id"]: u["userName"] for u in users}
    groups: dict[str, list[str]] = {}
    for group in group_list:
        for member in group.get("members") or ():
            groups.setdefault(member["value"], []).append(group["displayName"])
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Users"
    ws.append(HEADERS)
    for user in users:
        ws.append(peer_row(user, names, groups))
    wb.save(path)
    return len(users)


def usernames(path: Path) -> set[str]:
    """The Username column of a workbook's Users sheet (read with python-calamine: fast, exact)."""
    from python_calamine import CalamineWorkbook

    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("Users").to_python()
    column = [str(c) for c in rows[0]].index("Username")
    return {str(r[column]) for r in rows[1:] if r[column] not in ("", None)}


def main(argv: list[str] | None = None) -> int:
    """Run both exports and print one line per figure."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    args = parser.parse_args(argv)
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with far_sandbox(folder / "sandbox.sqlite3", args.users) as link:
            use_token(link.far)
            print(f"sandbox of {args.users:,} users started in {link.seconds:.1f} s")
            peer_book, rb_book = folder / "peer.xlsx", folder / "rosterbook.xlsx"

            t = time.perf_counter()
            peer_rows = peer_export(link.far, peer_book)
            t_peer = time.perf_counter() - t
            pages = -(-peer_rows // PEER_PAGE)
            print(f"peer (pages of {PEER_PAGE}, one after the other, + openpyxl)   {t_peer:7.1f} s  {peer_rows:,} rows, {pages} user pages")

            stages: dict[str, list[float]] = {}

            def progress(stage: str, done: int, total: int) -> None:
                now = time.perf_counter()
                stages.setdefault(stage, [now, now])[1] = now

            t = time.perf_counter()
            result = app.export_workbook(rb_book, platform=link.far, progress=progress)
            t_rb = time.perf_counter() - t
            ratio = t_peer / t_rb
            verdict = "ok" if ratio >= TARGET else "MISSED"
            print(f"rosterbook export_workbook (whole command)         {t_rb:7.1f} s  {result['rows']:,} rows   "
                  f"{ratio:.1f}x faster than the peer (target >= {TARGET:.0f}x: {verdict})")
            for stage, (first, last) in stages.items():
                print(f"  stage {stage!r}: {first - t:6.1f} s .. {last - t:6.1f} s after start")
            tail = t + t_rb - max(end for _, end in stages.values())
            print(f"  after the last stage (dress and save of the workbook): {tail:.1f} s")
            same = usernames(peer_book) == usernames(rb_book)
            print(f"same users in both workbooks: {same}; sizes: peer {peer_book.stat().st_size / 1e6:.1f} MB, "
                  f"rosterbook {rb_book.stat().st_size / 1e6:.1f} MB")
            if not same or result["rows"] != args.users or peer_rows != args.users:
                return 2
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
