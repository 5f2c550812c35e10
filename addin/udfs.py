"""In-cell check functions for Excel (xlwings UDFs) over the core's checks.

``@xw.func``/``@xw.arg``/``@xw.ret`` only attach metadata: each function stays a plain callable,
tested on Linux with the value shapes Excel passes (floats for numbers, None for blanks, a 1-D
list for one row or column, a 2-D list for a table). ``scripts/build_addin.py`` turns the
metadata into the add-in's VBA wrapper module, so in Excel (Windows) they are simply there:

- ``=ROSTERBOOK_CHECK(A2:H2)`` "OK" or that row's problems, one per line;
- ``=ROSTERBOOK_CHECK_TABLE(A1:H10001)`` one message per data row, checked in one call
  (duplicates across rows included), spilling down as a column;
- ``=ROSTERBOOK_STATUS(E2)`` is a status word allowed?;
- ``=ROSTERBOOK_LIST(F2, "Location")`` is a list cell well formed (separator, choices, escapes)?;
- ``=ROSTERBOOK_ESCAPE("Main|HQ")`` the item written for a ``|`` list cell: ``Main\\|HQ``.

The dialect comes from the optional ``dialect`` argument or else from the Settings sheet of the
workbook the formula is in: xlwings passes the calling cell as ``caller``, and
``addin.sheet.caller_context`` turns it into a ``CallerContext`` (a SheetBook, sheet, row).
Tests pass a ``CallerContext`` over an ``OpenpyxlBook`` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import xlwings as xw

from addin.sheet import CallerContext, caller_context
from rosterbook.core.codecs import Cell, CodecError, join_list, to_text
from rosterbook.core.dialects import Dialect, load_dialect
from rosterbook.core.problems import Problem
from rosterbook.errors import RosterbookError

FUNCTIONS: list[Callable[..., Any]] = []
"""Every UDF, in order: the add-in build generates one VBA wrapper for each."""
OK = "OK"
"""What a check function returns when there is nothing to report."""
_CATEGORY = "rosterbook"


def _udf(func: Callable[..., Any]) -> Callable[..., Any]:
    """Register a UDF for the wrapper module and mark it for xlwings (metadata only; on Linux a no-op)."""
    FUNCTIONS.append(func)
    return xw.func(category=_CATEGORY)(func)


# --- shapes Excel passes --------------------------------------------------------------------------


def as_row(value: Any) -> list[Cell]:
    """One row of cells from what Excel passes: a scalar (one cell), a 1-D list, or a 1-row 2-D list."""
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            if len(value) == 1:
                return list(value[0])
            if all(len(v) == 1 for v in value):  # a column range: one value per row
                return [v[0] for v in value]
            raise ValueError(f"expected one row of cells, got {len(value)} rows")
        return list(value)
    return [value]


def as_table(value: Any) -> list[list[Cell]]:
    """Rows of cells from what Excel passes: 2-D for a table, 1-D for a single row, a scalar for one cell."""
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (list, tuple)) for v in value):
            return [list(v) for v in value]
        return [list(value)]
    return [[value]]


def _blank_row(row: Sequence[Cell]) -> bool:
    return all(to_text(c) is None for c in row)


# --- the dialect and the caller ---------------------------------------------------------------------


def resolve(dialect: Any = None, caller: Any = None) -> tuple[Dialect, CallerContext | None]:
    """The dialect (explicit name, else the caller's workbook's Settings sheet) and the caller's context."""
    context = caller_context(caller)
    name = to_text(dialect)
    if name is None:
        if context is None or context.book is None:
            raise RosterbookError("no dialect: pass one, e.g. =ROSTERBOOK_CHECK(A2:H2, , \"jostle\"), or call from a rosterbook workbook.")
        from rosterbook.workbook import read_settings

        name = read_settings(context.book).dialect
    return load_dialect(name.strip().lower()), context


def _headers(headers: Any, width: int, context: CallerContext | None) -> list[Cell]:
    if headers is not None:
        return as_row(headers)
    if context is None or context.book is None:
        raise RosterbookError("no headers: pass the header row as the second argument, e.g. =ROSTERBOOK_CHECK(A2:H2, A$1:H$1).")
    return context.header_row()[:width]


def _lines(problems: Sequence[Problem]) -> str:
    return "\n".join(_render(p) for p in problems) if problems else OK


def _render(problem: Problem) -> str:
    """``Problem.render()``; a value checked on its own has no cell, so no ``Users`` place either."""
    text = problem.render()
    prefix = f"{problem.place} "
    if not problem.cell and text.startswith(prefix):
        return text[len(prefix) :]
    return text


def _message(exc: Exception) -> str:
    """A UDF shows a message in its cell, never a traceback."""
    if isinstance(exc, (RosterbookError, ValueError, KeyError)):
        return f"rosterbook: {exc}"
    return f"rosterbook: internal error ({type(exc).__name__}: {exc})"


def _column(dialect: Dialect, name: Any) -> str:
    wanted = to_text(name)
    if wanted is None:
        raise RosterbookError("no column name given")
    column = dialect.find_column(wanted)
    if column is None:
        raise RosterbookError(f"{wanted!r} is not a {dialect.name} column; expected one of {', '.join(repr(c) for c in dialect.column_names)}.")
    return column.name


# --- the functions ---------------------------------------------------------------------------------


@_udf
@xw.arg("row", doc="The row's cells, e.g. A2:H2 (starting at column A unless headers are given).")
@xw.arg("headers", doc="Optional: the header cells of those columns, e.g. A$1:H$1.")
@xw.arg("dialect", doc="Optional: the platform dialect; default: this workbook's Settings sheet.")
def ROSTERBOOK_CHECK(row: Any, headers: Any = None, dialect: Any = None, caller: Any = None) -> str:
    """Check one row: "OK" or its problems, one per line."""
    try:
        resolved, context = resolve(dialect, caller)
        cells = as_row(row)
        head = _headers(headers, len(cells), context)
        from rosterbook.core.checks import check_matrix

        sheet = context.sheet if context is not None else "Users"
        first_row = context.row if context is not None else 2
        problems = check_matrix(resolved, head, [cells], sheet=sheet, first_row=first_row)
        return _lines(problems[0] if problems else [])
    except Exception as exc:
        return _message(exc)


@_udf
@xw.arg("table", ndim=2, doc="The header row and the data rows, e.g. A1:H10001.")
@xw.arg("dialect", doc="Optional: the platform dialect; default: this workbook's Settings sheet.")
def ROSTERBOOK_CHECK_TABLE(table: Any, dialect: Any = None, caller: Any = None) -> list[list[str]]:
    """Check a whole table in one call: one message per data row ("OK" or its problems)."""
    try:
        resolved, context = resolve(dialect, caller)
        rows = as_table(table)
        if not rows:
            return [["rosterbook: the range is empty; select the header row and the data rows."]]
        head, data = rows[0], rows[1:]
        if not data:
            return [["rosterbook: no data rows below the header row."]]
        # Excel hands over the whole selected range: blank rows at the end get a blank answer.
        last = len(data)
        while last and _blank_row(data[last - 1]):
            last -= 1
        from rosterbook.core.checks import check_matrix

        sheet = context.sheet if context is not None else "Users"
        problems = check_matrix(resolved, head, data[:last], sheet=sheet, first_row=2)
        out = [[_lines(found)] for found in problems]
        out += [[""] for _ in range(len(data) - last)]
        return out
    except Exception as exc:
        return [[_message(exc)]]


@_udf
@xw.arg("value", doc="The status cell, e.g. E2.")
@xw.arg("dialect", doc="Optional: the platform dialect; default: this workbook's Settings sheet.")
def ROSTERBOOK_STATUS(value: Any, dialect: Any = None, caller: Any = None) -> str:
    """Is this an allowed account status word? "OK" or what is allowed."""
    try:
        resolved, _ = resolve(dialect, caller)
        if not resolved.status_column:
            return f"rosterbook: the {resolved.name} dialect has no status column."
        from rosterbook.core.checks import check_value

        return _lines(check_value(resolved, resolved.status_column, as_row(value)[0]))
    except Exception as exc:
        return _message(exc)


@_udf
@xw.arg("value", doc="The list cell, e.g. F2.")
@xw.arg("column", doc='The list column\'s header, e.g. "Location".')
@xw.arg("dialect", doc="Optional: the platform dialect; default: this workbook's Settings sheet.")
def ROSTERBOOK_LIST(value: Any, column: Any, dialect: Any = None, caller: Any = None) -> str:
    """Is this list cell well formed for its column (separator, escapes, allowed items)? "OK" or the problems."""
    try:
        resolved, _ = resolve(dialect, caller)
        name = _column(resolved, column)
        if resolved.column(name).type != "list":
            return f"rosterbook: {name!r} is not a list column of the {resolved.name} dialect."
        from rosterbook.core.checks import check_value

        return _lines(check_value(resolved, name, as_row(value)[0]))
    except Exception as exc:
        return _message(exc)


@_udf
@xw.arg("item", doc='One item that may contain the separator, e.g. "Main|HQ".')
@xw.arg("separator", doc='Optional: the list separator (default "|").')
def ROSTERBOOK_ESCAPE(item: Any, separator: Any = "|") -> str:
    """The item as written inside a list cell: a literal separator escaped (``Main|HQ`` -> ``Main\\|HQ``)."""
    try:
        text = to_text(item)
        if text is None:
            return ""
        sep = to_text(separator) or "|"
        return join_list([text], sep, "\\")
    except CodecError as exc:
        return f"rosterbook: {exc.message}"
    except Exception as exc:
        return _message(exc)


__all__ = [
    "FUNCTIONS",
    "OK",
    "ROSTERBOOK_CHECK",
    "ROSTERBOOK_CHECK_TABLE",
    "ROSTERBOOK_ESCAPE",
    "ROSTERBOOK_LIST",
    "ROSTERBOOK_STATUS",
    "as_row",
    "as_table",
    "resolve",
]
