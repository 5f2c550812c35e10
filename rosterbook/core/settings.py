"""A workbook's sync settings: what it syncs to and how. The only Settings; never a token.

The workbook layer parses the Settings sheet's cells into this class (naming the bad cell);
CSV commands build it from options. Defaults and validation live here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Literal

from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.errors import UsageError

ListMode = Literal["add", "replace"]
LIST_MODES: tuple[ListMode, ...] = ("add", "replace")

DELETION_THRESHOLD_RATIO = 0.10
"""Default share of active users a sync (or an export) may lose before the deletion guard trips."""
DELETION_THRESHOLD_MIN = 25
"""Default number of users the guard always allows, whatever the share."""


@dataclass(frozen=True)
class Settings:
    """Per-workbook sync settings (the Settings sheet, in this order)."""

    dialect: str = "scim"
    """The platform dialect (``rosterbook dialects`` lists them)."""
    platform_url: str | None = None
    """SCIM base URL; None means the embedded sandbox (CSV dialects: unused)."""
    subscription_seats: int | None = None
    """Seats in the subscription, for the preview's billing line; None when unknown."""
    invite_new_users: bool = False
    """EdApp's toggle: new users get an invitation email."""
    list_mode: ListMode = "replace"
    """Existing users' lists: ``add`` to the current items, or ``replace`` them."""
    deactivate_missing: bool = False
    """Incenteev's option: users not in the file are deactivated."""
    deletion_threshold_ratio: float = DELETION_THRESHOLD_RATIO
    """Refuse a sync that archives more than this share of active users unless confirmed."""
    deletion_threshold_min: int = DELETION_THRESHOLD_MIN
    """...or more than this many users, whichever is larger."""

    def __post_init__(self) -> None:
        if self.list_mode not in LIST_MODES:
            raise UsageError(f"list_mode {self.list_mode!r} is not one of 'add', 'replace'.")
        if not 0 <= self.deletion_threshold_ratio <= 1:
            raise UsageError(f"deletion_threshold_ratio {self.deletion_threshold_ratio!r} is not between 0 and 1.")
        if self.deletion_threshold_min < 0:
            raise UsageError(f"deletion_threshold_min {self.deletion_threshold_min!r} is negative.")
        if self.subscription_seats is not None and self.subscription_seats < 0:
            raise UsageError(f"subscription_seats {self.subscription_seats!r} is negative.")

    @classmethod
    def for_dialect(cls, dialect: str | Dialect, **overrides: Any) -> Settings:
        """Settings with the dialect's option defaults (options it does not offer stay off), then ``overrides``."""
        found = load_dialect(dialect) if isinstance(dialect, str) else dialect
        options = found.options
        values: dict[str, Any] = {
            "dialect": found.name,
            "invite_new_users": bool(options.invite_new_users.default) if options.invite_new_users.available else False,
            "list_mode": str(options.list_mode.default) if options.list_mode.available else "replace",
            "deactivate_missing": bool(options.deactivate_missing.default) if options.deactivate_missing.available else False,
        }
        values.update(overrides)
        return cls(**values)

    def carried_over(self, previous: Settings | None) -> Settings:
        """These settings with the user's choices from ``previous`` (same dialect): what a re-export keeps."""
        if previous is None or previous.dialect != self.dialect:
            return self
        keep = ("subscription_seats", "invite_new_users", "list_mode", "deactivate_missing", "deletion_threshold_ratio", "deletion_threshold_min")
        return Settings(**{f.name: getattr(previous if f.name in keep else self, f.name) for f in fields(self)})


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Settings))
"""The settings in Settings-sheet order."""
