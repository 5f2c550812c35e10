"""In-cell check functions for Excel (xlwings UDFs): the Check button's problems, cell by cell.

``@xw.func``/``@xw.arg``/``@xw.ret`` only attach metadata (off Windows they do nothing): each function
stays a plain callable, tested on Linux with the value shapes Excel passes (floats for numbers, None
for blanks, a 1-D list for one row or column, a 2-D list for a table). ``_udf`` and ``_arg`` also
record each function's help here, so ``scripts/build_addin.py`` can generate the add-in's VBA
wrappers and their ``Application.MacroOptions`` registration (Insert Function's descriptions,
argument help and the "rosterbook" category); in Excel (Windows) they are simply there:

- ``=ROSTERBOOK_CHECK(A2:H2)`` "OK" or that row's problems, one per line;
- ``=ROSTERBOOK_CHECK_TABLE(A1:H10001)`` one message per data row, checked in one call
  (duplicates across rows included), spilling down as a column;
- ``=ROSTERBOOK_STATUS(E2)`` is a status word allowed? (over ``E2:E100``: one answer per cell);
- ``=ROSTERBOOK_LIST(F2, "Location")`` is a list cell well formed (separator, choices, escapes)?;
- ``=ROSTERBOOK_ESCAPE("Main|HQ")`` the item written for a ``|`` list cell: ``Main\\|HQ``.

In a rosterbook workbook they check exactly as the Check button does (``rosterbook.cellcheck``): the
workbook's own dialect, the values its platform knows, and row ids that tell new users from
exported ones. The add-in's VBA passes where a range argument lies (``place``), so a row is
checked under the headers of its own columns and problems name the sheet's cells. xlwings passes
the calling cell as ``caller`` and ``addin.sheet.caller_context`` turns it into a ``CallerContext``;
tests pass a ``CallerContext`` over an ``OpenpyxlBook`` instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import xlwings as xw

from addin.sheet import CallerContext, Place, caller_context, place_of
from rosterbook import cellcheck
from rosterbook.core.codecs import Cell, CodecError, join_list, to_text
from rosterbook.core.dialects import Dialect, all_dialects
from rosterbook.core.problems import Problem, quote
from rosterbook.errors import RosterbookError

FUNCTIONS: list[Callable[..., Any]] = []
"""Every UDF, in order: the add-in build generates one VBA wrapper (and one registration) for each."""
OK = "OK"
"""What a check function returns when there is nothing to report."""
CATEGORY = "rosterbook"
"""Insert Function's category of every function."""
_CALLER = "caller"  # xlwings' reserved parameter: the calling cell


@dataclass(frozen=True)
class Argument:
    """One parameter of a function as Excel shows it (``doc``), or fills it itself (``vba``)."""

    name: str
    doc: str
    vba: str | None = None
    """A VBA expression the wrapper passes instead of a user argument (hidden from the formula)."""


def _udf(func: Callable[..., Any]) -> Callable[..., Any]:
    """Register a UDF for the wrapper module and mark it for xlwings (metadata only; on Linux a no-op)."""
    FUNCTIONS.append(func)
    return xw.func(category=CATEGORY)(func)


def _arg(name: str, doc: str, *, vba: str | None = None, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``xw.arg`` that also keeps the argument's help (xlwings keeps it only on Windows)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if name not in inspect.signature(func).parameters:
            raise TypeError(f"{func.__name__} has no parameter {name!r}")
        func.__dict__.setdefault("__rosterbook_args__", {})[name] = Argument(name, doc, vba)
        extra = {"vba": vba} if vba is not None else {}
        return xw.arg(name, doc=doc, **extra, **options)(func)

    return decorate


def arguments(func: Callable[..., Any]) -> list[Argument]:
    """The parameters of a UDF in signature order, ``caller`` left out, each with its help."""
    known: dict[str, Argument] = func.__dict__.get("__rosterbook_args__", {})
    return [known.get(name, Argument(name, "")) for name in inspect.signature(func).parameters if name != _CALLER]


def description(func: Callable[..., Any]) -> str:
    """Insert Function's description of a UDF: the first line of its docstring."""
    return (inspect.getdoc(func) or "").splitlines()[0] if func.__doc__ else ""


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


def _blank(cells: Sequence[Cell]) -> bool:
    return all(to_text(c) is None for c in cells)


# --- rendering ------------------------------------------------------------------------------------


def _lines(problems: Sequence[Problem]) -> str:
    return "\n".join(_render(p) for p in problems) if problems else OK


def _render(problem: Problem) -> str:
    """``Problem.render()``, as the Check button shows it; a value checked on its own (row 0) has no place."""
    text = problem.render()
    prefix = f"{problem.place} "
    if not problem.cell and problem.row == 0 and text.startswith(prefix):
        return text[len(prefix) :]
    return text


def _message(exc: Exception) -> str:
    """A UDF shows a message in its cell, never a traceback."""
    if isinstance(exc, RosterbookError):
        from addin.words import EXCEL

        return f"rosterbook: {exc.render(EXCEL)}"
    if isinstance(exc, (ValueError, KeyError)):
        return f"rosterbook: {exc}"
    return f"rosterbook: internal error ({type(exc).__name__}: {exc})"


def _within(problems: Sequence[Problem], first: int, last: int) -> list[Problem]:
    """Problems of the cells in columns ``first`` to ``last`` (and header-row problems without a cell)."""
    out = []
    for problem in problems:
        column = cellcheck.column_index(problem.cell)
        if column is None or first <= column <= last:
            out.append(problem)
    return out


def _no_header_row(rules: cellcheck.Rules, at: Place, last_column: int) -> str:
    first, last = _address(at.column, at.row), _address(last_column, at.row)
    return (
        f"rosterbook: the range's first row ({at.sheet}!{first}:{last}) is not a header row: none of its cells names a "
        f"{rules.dialect.title} column. Include the header row, e.g. =ROSTERBOOK_CHECK_TABLE("
        f"{_address(at.column, 1)}:{_address(last_column, at.row + at.rows - 1)})."
    )


def _address(column: int, row: int) -> str:
    from rosterbook.core.problems import cell_address

    return cell_address(column, row)


# --- where the cells are ----------------------------------------------------------------------------


def _rules(dialect: Any, context: CallerContext | None) -> cellcheck.Rules:
    book = context.book if context is not None else None
    try:
        return cellcheck.rules_for(book, to_text(dialect))
    except RosterbookError as exc:
        if book is None and to_text(dialect) is None:
            raise RosterbookError('no dialect: pass one, e.g. =ROSTERBOOK_CHECK(A2:H2, , "jostle"), or call from a rosterbook workbook.') from exc
        raise


def _padded(cells: Sequence[Cell], column: int) -> list[Cell]:
    return [None] * (column - 1) + list(cells)


def _overlay(row: Sequence[Cell], cells: Sequence[Cell], column: int) -> list[Cell]:
    out = list(row) + [None] * max(0, column - 1 + len(cells) - len(row))
    out[column - 1 : column - 1 + len(cells)] = list(cells)
    return out


def _sheet_block(context: CallerContext, place: Place, header_row: int, data: list[list[Cell]], head: list[Cell] | None) -> cellcheck.Block:
    """The block as the sheet holds it: whole rows (every column up to the last header), the range's cells on top.

    Problems need whole rows: a row is new or not by its hidden row id, a blank column outside the
    range is not a blank cell, and missing columns are judged on the whole header row. When the
    range already spans them (a Check column's formula), nothing more is read.
    """
    sheet_head = context.read(place.sheet, header_row, header_row)
    full_head = list(sheet_head[0]) if sheet_head else []
    last = place.column + place.columns - 1
    first_row = header_row + 1 if head is not None else place.row
    if head is not None:
        full_head = _overlay(full_head, head, place.column)
    if place.column == 1 and last >= cellcheck.data_width(full_head):
        rows = data
    else:
        found = context.read(place.sheet, first_row, first_row + len(data) - 1) if data else []
        rows = [_overlay(found[i] if i < len(found) else [], r, place.column) for i, r in enumerate(data)]
    return cellcheck.Block(place.sheet, full_head, rows, first_row, header_row)


# --- the functions ---------------------------------------------------------------------------------

_DIALECT_DOC = "Optional: the platform's dialect (e.g. \"jostle\"); default: this workbook's own, as the Check button uses it."


@_udf
@_arg("row", "The row's cells, e.g. A2:H2; checked under the headers of the same columns in row 1.")
@_arg("headers", "Optional: header cells to use instead of row 1, e.g. C$1:H$1 (then only these columns are checked).")
@_arg("dialect", _DIALECT_DOC)
@_arg("place", "Filled in by the add-in: where the row's range lies.", vba="RosterbookPlace(row)")
def ROSTERBOOK_CHECK(row: Any, headers: Any = None, dialect: Any = None, caller: Any = None, place: Any = None) -> str:
    """Checks one row as the Check button does: "OK" or its problems, one per line."""
    try:
        context = caller_context(caller)
        rules = _rules(dialect, context)
        cells = as_row(row)
        at = place_of(place) or Place(context.sheet if context is not None else "Users", context.row if context is not None else 2, 1, 1, len(cells))
        last = at.column + len(cells) - 1
        if headers is not None:
            block = cellcheck.Block(at.sheet, _padded(as_row(headers), at.column), [_padded(cells, at.column)], at.row)
        elif context is None or context.book is None:
            raise RosterbookError("no headers: pass the header row as the second argument, e.g. =ROSTERBOOK_CHECK(A2:H2, A$1:H$1).")
        elif at.row <= 1:
            return "rosterbook: row 1 holds the headers; check a data row, e.g. =ROSTERBOOK_CHECK(A2:H2)."
        else:
            block = _sheet_block(context, Place(at.sheet, at.row, at.column, 1, len(cells)), 1, [cells], None)
        checked = cellcheck.check_block(rules, block)
        return _lines(_within([*checked.header, *checked.rows[0]], at.column, last))
    except Exception as exc:
        return _message(exc)


@_udf
@_arg("table", "The header row and the data rows, e.g. A1:H10001 (a Table: Users[#All]).", ndim=2)
@_arg("dialect", _DIALECT_DOC)
@_arg("place", "Filled in by the add-in: where the table's range lies.", vba="RosterbookPlace(table)")
def ROSTERBOOK_CHECK_TABLE(table: Any, dialect: Any = None, caller: Any = None, place: Any = None) -> list[list[str]]:
    """Checks a whole table in one call, duplicates across rows included: one message per data row."""
    try:
        context = caller_context(caller)
        rules = _rules(dialect, context)
        rows = as_table(table)
        if not rows:
            return [["rosterbook: the range is empty; select the header row and the data rows."]]
        head, data = rows[0], rows[1:]
        if not data:
            return [["rosterbook: no data rows below the header row."]]
        at = place_of(place) or Place(context.sheet if context is not None else "Users", 1, 1, len(rows), len(head))
        last_column = at.column + len(head) - 1
        # Excel hands over the whole selected range: blank rows at the end get a blank answer.
        last = len(data)
        while last and _blank(data[last - 1]):
            last -= 1
        if context is not None and context.book is not None:
            block = _sheet_block(context, at, at.row, data[:last], head)
        else:
            block = cellcheck.Block(at.sheet, _padded(head, at.column), [_padded(r, at.column) for r in data[:last]], at.row + 1, at.row)
        checked = cellcheck.check_block(rules, block)
        if not checked.recognised:
            return [[_no_header_row(rules, at, last_column)]]
        header = _within(checked.header, at.column, last_column)
        out = [[""] if blank else [_lines([*header, *_within(found, at.column, last_column)])] for found, blank in zip(checked.rows, checked.blank, strict=True)]
        out += [[""] for _ in range(len(data) - last)]
        return out
    except Exception as exc:
        return [[_message(exc)]]


def _each(value: Any, check: Callable[[Cell], str]) -> str | list[list[str]]:
    """One answer for one cell; over a range, one per cell in its shape (trailing blank cells: blank)."""
    if not isinstance(value, (list, tuple)):
        return check(value)
    grid = as_table(value)
    if len(grid) == 1 and len(grid[0]) == 1:
        return check(grid[0][0])
    flat = [c for r in grid for c in r]
    filled = max((i for i, c in enumerate(flat) if to_text(c) is not None), default=-1)
    width = len(grid[0])
    return [[check(c) if r * width + i <= filled else "" for i, c in enumerate(row)] for r, row in enumerate(grid)]


@_udf
@_arg("value", "The status cell, e.g. E2, or a column of them, e.g. E2:E100 (one answer per cell).", ndim=2)
@_arg("dialect", _DIALECT_DOC)
def ROSTERBOOK_STATUS(value: Any, dialect: Any = None, caller: Any = None) -> str | list[list[str]]:
    """Is this an allowed account status word? "OK" or what is allowed."""
    try:
        rules = _rules(dialect, caller_context(caller))
        status = rules.dialect.status_column
        if not status:
            return f"rosterbook: the {rules.dialect.name} dialect has no status column."
        return _each(value, lambda cell: _value_lines(rules, status, cell))
    except Exception as exc:
        return _message(exc)


@_udf
@_arg("value", "The list cell, e.g. F2, or a column of them, e.g. F2:F100 (one answer per cell).", ndim=2)
@_arg("column", 'The list column\'s header, e.g. "Location".')
@_arg("dialect", _DIALECT_DOC)
def ROSTERBOOK_LIST(value: Any, column: Any, dialect: Any = None, caller: Any = None) -> str | list[list[str]]:
    """Is this list cell well formed for its column (separator, escapes, allowed items)? "OK" or the problems."""
    try:
        rules = _rules(dialect, caller_context(caller))
        name = _column(rules.dialect, column)
        if rules.dialect.column(name).type != "list":
            return f"rosterbook: {name!r} is not a list column of the {rules.dialect.name} dialect."
        return _each(value, lambda cell: _value_lines(rules, name, cell))
    except Exception as exc:
        return _message(exc)


def _value_lines(rules: cellcheck.Rules, column: str, value: Cell) -> str:
    """One value of one column, with the workbook's known values (``Kraków|Lagos``: two locations it has)."""
    from rosterbook.core.checks import check_value

    return _lines(check_value(rules.dialect, column, value, platform_choices=rules.choices))


def _column(dialect: Dialect, name: Any) -> str:
    wanted = to_text(name)
    if wanted is None:
        raise RosterbookError("no column name given")
    column = dialect.find_column(wanted)
    if column is None:
        raise RosterbookError(f"{wanted!r} is not a {dialect.name} column; expected one of {', '.join(repr(c) for c in dialect.column_names)}.")
    return column.name


def _list_kinds() -> dict[str, tuple[str, str | None, list[str]]]:
    """Separator (stripped) -> (separator as written, escape, platforms), from the dialects' list columns."""
    kinds: dict[str, tuple[str, str | None, list[str]]] = {}
    for dialect in all_dialects():
        for column in dialect.columns:
            if column.type != "list" or column.separator is None:
                continue
            key = column.separator.strip() or column.separator
            written, escape, titles = kinds.get(key, (column.separator, column.escape, []))
            if dialect.title not in titles:
                titles.append(dialect.title)
            kinds[key] = (written, escape or column.escape, titles)
    return kinds


@_udf
@_arg("item", 'One item that may contain the separator, e.g. "Main|HQ".')
@_arg("separator", 'Optional: the list separator, "|" (default) or "; ".')
def ROSTERBOOK_ESCAPE(item: Any, separator: Any = "|") -> str:
    """The item as written inside a list cell: a literal "|" escaped (Main|HQ -> Main\\|HQ)."""
    try:
        text = to_text(item)
        if text is None:
            return ""
        sep = to_text(separator) or "|"
        kinds = _list_kinds()
        kind = kinds.get(sep.strip() or sep)
        if kind is None:
            known = "; ".join(f"{quote(written)} ({', '.join(titles)})" for written, _, titles in kinds.values())
            return f"rosterbook: no platform's lists are separated by {quote(sep)}; the separators are {known}."
        written, escape, titles = kind
        if escape is None:
            if written.strip() in text:
                names = ", ".join(titles[:-1]) + (" and " if len(titles) > 1 else "") + titles[-1]
                return (
                    f"rosterbook: {quote(text)} contains {quote(written.strip())}, which separates the items of {names} lists; "
                    "those lists have no escape, so one item cannot contain it. Rename the item on the platform."
                )
            return text
        return join_list([text], written, escape)
    except CodecError as exc:
        return f"rosterbook: {exc.message}"
    except Exception as exc:
        return _message(exc)


__all__ = [
    "CATEGORY",
    "FUNCTIONS",
    "OK",
    "ROSTERBOOK_CHECK",
    "ROSTERBOOK_CHECK_TABLE",
    "ROSTERBOOK_ESCAPE",
    "ROSTERBOOK_LIST",
    "ROSTERBOOK_STATUS",
    "Argument",
    "arguments",
    "as_row",
    "as_table",
    "description",
]
