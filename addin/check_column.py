"""The ribbon's "Add check column" (the layout's Check column lives in ``rosterbook.check_column``, which export keeps)."""

from __future__ import annotations

from rosterbook.check_column import ROW_FORMULA, SHEET, add_check_column, has_check_column, structured_column, table_formula

__all__ = ["ROW_FORMULA", "SHEET", "add_check_column", "has_check_column", "structured_column", "table_formula"]
