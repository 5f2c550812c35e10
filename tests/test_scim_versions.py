"""Conflicts are decided by values, on any SCIM platform: one without versions (no ``meta.version``, no
ETag, ``etag.supported=false``) and one behind Express (a weak body-hash ``ETag`` header on every
response, unrelated to the resource's version). On both, through a real loopback proxy in front of
the sandbox: edited rows sync, a platform edit made after the export is a conflict (shown field by
field: exported -> now on the platform -> in the sheet) and is not overwritten, and a platform edit
of a field the sheet does not send is no conflict and stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.books import edit, patch_user, platform_users
from support.scimproxies import ExpressProxy, RewritingProxy, VersionlessProxy

from rosterbook import app
from rosterbook.errors import DataError
from rosterbook.sandbox import Sandbox

PROXIES: dict[str, Callable[[str], RewritingProxy]] = {
    "versionless": VersionlessProxy,
    "express": ExpressProxy,
    "express-announcing-etags": lambda url: ExpressProxy(url, announce_etag=True),
}


@pytest.fixture(params=sorted(PROXIES))
def platform(request: pytest.FixtureRequest, fresh_sandbox: Callable[..., Sandbox]) -> Iterator[tuple[Sandbox, RewritingProxy]]:
    sandbox = fresh_sandbox(users=60, seed=3)  # 4 of 60 users: read one by one (GET), as a small sync does
    with PROXIES[request.param](sandbox.url) as proxy:
        yield sandbox, proxy


def _names(url: str) -> list[str]:
    return sorted(platform_users(url))


def test_edits_sync_and_platform_edits_are_conflicts_never_overwritten(platform: tuple[Sandbox, RewritingProxy], tmp_path: Path) -> None:
    sandbox, proxy = platform
    book = tmp_path / "book.xlsx"
    app.export_workbook(book, platform=proxy.url)
    a, b, c, d = _names(sandbox.url)[:4]
    before = platform_users(sandbox.url)
    # The sheet edits four users; meanwhile another admin changes b's title (the field the sheet sends too)
    # and c's department (a field the sheet does not send).
    edit(book, {(a, "Job title"): "Sheet title A", (b, "Job title"): "Sheet title B", (c, "Job title"): "Sheet title C",
                (d, "Last name"): "Sheet-Surname"})
    patch_user(sandbox.url, before[b]["id"], [{"op": "replace", "path": "title", "value": "Platform title B"}])
    patch_user(sandbox.url, before[c]["id"], [{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                                               "value": "Platform department C"}])

    plan = app.preview_workbook(book)
    assert plan.counts["conflict"] == 1 and plan.counts["update"] == 3, plan.render_text()
    conflict = next(ch for ch in plan.changes if ch.action == "conflict")
    assert conflict.key == b
    shown = plan.to_dict()["changes"]
    entry = next(ch for ch in shown if ch["action"] == "conflict")
    assert entry["conflicts"] == {"Job title": {"exported": before[b].get("title"), "platform": "Platform title B", "sheet": "Sheet title B"}}
    assert f"Job title: exported {before[b].get('title')!r} -> now on the platform 'Platform title B' -> in the sheet 'Sheet title B'" in plan.render_text()

    with pytest.raises(DataError, match="1 row was changed on the platform since the export"):
        app.sync_workbook(book, confirm_deletions=True)
    result = app.sync_workbook(book, skip_rows=[conflict.row or 0])
    assert result.ok and result.confirmed == 3, result.to_dict()
    after = platform_users(sandbox.url)
    assert after[a]["title"] == "Sheet title A"
    assert after[b]["title"] == "Platform title B"  # the other admin's edit stands
    assert after[c]["title"] == "Sheet title C"
    assert after[c]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"] == "Platform department C"
    assert after[d]["name"]["familyName"] == "Sheet-Surname"
    if isinstance(proxy, VersionlessProxy) or (isinstance(proxy, ExpressProxy) and not proxy.announce_etag):
        assert proxy.preconditions == 0  # no If-Match to a platform that does not announce ETags

    # Synced rows edited again sync as ordinary updates (the recorded version, or none, is never a false conflict).
    edit(book, {(a, "Job title"): "Sheet title A2", (c, "Job title"): "Sheet title C2"})
    again = app.sync_workbook(book, skip_rows=[conflict.row or 0])
    assert again.ok and again.confirmed == 2, again.to_dict()
    final = platform_users(sandbox.url)
    assert (final[a]["title"], final[c]["title"], final[b]["title"]) == ("Sheet title A2", "Sheet title C2", "Platform title B")


def test_the_etag_header_is_not_the_version_when_the_body_has_one(fresh_sandbox: Callable[..., Sandbox]) -> None:
    from sync_client.scim import ScimClient

    sandbox = fresh_sandbox(users=3, seed=3)
    with ExpressProxy(sandbox.url) as proxy, ScimClient(proxy.url) as client:
        user = next(iter(platform_users(sandbox.url).values()))
        got = client.get(f"/Users/{user['id']}")
        assert got is not None and got.version == user["meta"]["version"]
    with VersionlessProxy(sandbox.url) as bare, ScimClient(bare.url) as client:
        got = client.get(f"/Users/{user['id']}")
        assert got is not None and got.version is None
