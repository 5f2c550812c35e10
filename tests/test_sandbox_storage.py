"""The SQLite storage: scim2-server's storage contract, restarts, version monotonicity, two connections on one file."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scim2_models import ResourceType, ScimProvider, UniquenessException
from scim2_server.testing import ScimStorageContract
from scim2_server.utils import load_default_provider

from rosterbook.sandbox import HR_SCHEMA, SqliteStorage, build_provider, demo_organisation

# Providers are immutable and costly to build (~0.1 s): one per session instead of one per test.
_default_provider = functools.cache(load_default_provider)
_sandbox_provider = functools.cache(build_provider)


class TestContractInMemory(ScimStorageContract):
    """scim2-server's contract, RFC 7643 schemas, in-memory database."""

    @pytest.fixture
    def provider(self) -> ScimProvider:
        return _default_provider()

    @pytest.fixture
    def storage(self, provider: ScimProvider) -> Iterator[SqliteStorage]:
        storage = SqliteStorage(":memory:", provider)
        yield storage
        storage.close()


class TestContractOnFile(ScimStorageContract):
    """scim2-server's contract, the sandbox's schemas (HR extension), a database file."""

    @pytest.fixture
    def provider(self) -> ScimProvider:
        return _sandbox_provider()

    @pytest.fixture
    def storage(self, provider: ScimProvider, tmp_path: Path) -> Iterator[SqliteStorage]:
        storage = SqliteStorage(tmp_path / "contract.sqlite3", provider)
        yield storage
        storage.close()


def _types(provider: ScimProvider) -> tuple[ResourceType, ResourceType]:
    by_name = {rt.name: rt for rt in provider.resource_types}
    return by_name["User"], by_name["Group"]


def _user(provider: ScimProvider, user_name: str, **values: Any) -> Any:
    model: Any = provider.model_for("User")
    return model.model_validate({"userName": user_name, **values})


def _number(version: str | None) -> int:
    assert version is not None
    return int(version.removeprefix("W/").strip('"'))


def test_reopened_storage_serves_the_same_resources(tmp_path: Path) -> None:
    provider = _sandbox_provider()
    user_type, _ = _types(provider)
    first = SqliteStorage(tmp_path / "db.sqlite3", provider)
    created = first.create(user_type, _user(provider, "zoë@lumen.example", **{HR_SCHEMA: {"locations": ["Dublin | Docklands"]}}))
    first.close()

    second = SqliteStorage(tmp_path / "db.sqlite3", provider)
    read = second.get(user_type, str(created.id))
    second.close()

    assert read == created
    assert read.user_name == "zoë@lumen.example"


def test_versions_never_repeat_across_restarts(tmp_path: Path) -> None:
    provider = _sandbox_provider()
    user_type, _ = _types(provider)
    db = tmp_path / "db.sqlite3"
    first = SqliteStorage(db, provider)
    kept = first.create(user_type, _user(provider, "kept"))
    newest = first.create(user_type, _user(provider, "newest"))
    first.delete(user_type, str(newest.id))  # the highest version is no longer stored
    first.close()

    second = SqliteStorage(db, provider)
    updated = second.update(user_type, second.get(user_type, str(kept.id)))
    second.close()

    assert _number(updated.meta.version) > _number(newest.meta.version) > _number(kept.meta.version)


def test_lost_counter_restarts_above_stored_versions(tmp_path: Path) -> None:
    provider = _sandbox_provider()
    user_type, _ = _types(provider)
    db = tmp_path / "db.sqlite3"
    first = SqliteStorage(db, provider)
    stored = [first.create(user_type, _user(provider, f"user{n}")) for n in range(3)]
    first._conn.execute("UPDATE settings SET value = 0 WHERE name = 'version'")  # e.g. an old copy of the file
    first.close()

    second = SqliteStorage(db, provider)
    fresh = second.create(user_type, _user(provider, "fresh"))
    second.close()

    assert _number(fresh.meta.version) > max(_number(u.meta.version) for u in stored)


def test_two_connections_on_one_file_share_versions_and_uniqueness(tmp_path: Path) -> None:
    """Two processes using the same sandbox file (e.g. the foreground server and an embedded one)."""
    provider = _sandbox_provider()
    user_type, _ = _types(provider)
    a = SqliteStorage(tmp_path / "db.sqlite3", provider)
    b = SqliteStorage(tmp_path / "db.sqlite3", provider)

    versions = [_number(s.create(user_type, _user(provider, f"u{n}")).meta.version) for n, s in enumerate([a, b, a, b])]
    with pytest.raises(UniquenessException):
        b.create(user_type, _user(provider, "U0"))
    a.close()
    b.close()

    assert len(set(versions)) == 4


def test_failed_update_changes_nothing(tmp_path: Path) -> None:
    provider = _sandbox_provider()
    user_type, _ = _types(provider)
    storage = SqliteStorage(":memory:", provider)
    storage.create(user_type, _user(provider, "taken"))
    mine = storage.create(user_type, _user(provider, "mine", title="Before"))
    renamed = mine.model_copy(update={"user_name": "TAKEN", "title": "After"})

    with pytest.raises(UniquenessException):
        storage.update(user_type, renamed)

    after = storage.get(user_type, str(mine.id))
    assert (after.user_name, after.title, after.meta.version) == ("mine", "Before", mine.meta.version)
    assert storage.count("User") == 2
    storage.close()


def test_load_writes_once_and_documents_read_back_valid(tmp_path: Path) -> None:
    provider = _sandbox_provider()
    user_type, group_type = _types(provider)
    users, groups = demo_organisation(25, seed=3)
    storage = SqliteStorage(tmp_path / "db.sqlite3", provider)

    written = storage.load([(user_type, users), (group_type, groups)], only_if_empty=True)
    again = storage.load([(user_type, demo_organisation(5, seed=4)[0])], only_if_empty=True)

    assert (written, again) == (len(users) + len(groups), 0)
    total, documents = storage.documents(user_type, 0, None)
    assert total == 25 == len(documents)
    versions = [_number(storage.get(user_type, u["id"]).meta.version) for u in users]
    assert len(set(versions)) == 25
    storage.close()
