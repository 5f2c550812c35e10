"""The command line: each command builds one object, makes one library call, prints the result.

Exit codes: 0 success, 1 invalid data or failed rows, 2 usage. No traceback reaches a user
(set ROSTERBOOK_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from rosterbook import __version__
from rosterbook.errors import RosterbookError, UsageError


def emit_json(data: Any) -> None:
    """Print the library's result as JSON, exactly as returned (keys sorted for stable output)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="rosterbook")
def cli() -> None:
    """rosterbook: manage an HR or learning platform's users from an Excel workbook.

    With no platform configured, commands use the embedded sandbox: a local SCIM 2.0 server
    with a demo organisation, started on demand.
    """


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point: run the CLI, turning every error into a message and an exit code."""
    code = run(argv)
    sys.exit(code)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (what ``main`` exits with)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="rosterbook", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except RosterbookError as exc:
        click.echo(f"Error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:
        if os.environ.get("ROSTERBOOK_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(exc).__name__}: {exc}). Set ROSTERBOOK_DEBUG=1 for details.", err=True)
        return 1
    except SystemExit as exc:  # click's --help / --version exit
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return result if isinstance(result, int) else 0


# --- commands ---------------------------------------------------------------------------------
# Each command: parse options, make one library call, print (text or --json), return an exit code.


_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


@cli.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dialect", "dialect", metavar="NAME", help="Platform dialect (recognised from the header row when omitted).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-write", is_flag=True, help="Workbooks: do not mark problem cells in the file.")
def check_command(file: Path, dialect: str | None, as_json: bool, no_write: bool) -> int:
    """Check a CSV export or upload file (or a workbook) against a platform's rules.

    Prints one line per problem, sorted by row then column. Exit 0 when there are no errors
    (warnings allowed), 1 when there are errors, 2 for usage errors.
    """
    if file.suffix.casefold() in _WORKBOOK_SUFFIXES:
        report = _check_workbook(file, dialect, no_write)
    else:
        from rosterbook.csvfile import check_csv

        report = check_csv(file, dialect)
    if as_json:
        emit_json(report.to_dict())
    else:
        if report.problems:
            click.echo(report.render_text())
        click.echo(report.summary(), err=True)
    return 0 if report.ok else 1


def _check_workbook(file: Path, dialect: str | None, no_write: bool) -> Any:
    """Workbooks are checked by ``rosterbook.app.check_workbook`` (marks cells unless ``--no-write``)."""
    try:
        from rosterbook.app import check_workbook  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        raise UsageError(f"{file.name}: checking workbooks is not available in this version; check a CSV file instead.") from None
    return check_workbook(file, dialect=dialect, write=not no_write)


@cli.command("dialects")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the dialect(s) as JSON.")
def dialects_command(name: str | None, as_json: bool) -> int:
    """List the platform dialects, or show one's columns, rules and notes."""
    from rosterbook.core.dialects import all_dialects, describe_dialect, load_dialect

    if name is not None:
        dialect = load_dialect(name)
        if as_json:
            emit_json(dialect.model_dump(mode="json"))
        else:
            click.echo(describe_dialect(dialect))
        return 0
    found = all_dialects()
    if as_json:
        emit_json([{"name": d.name, "title": d.title, "kind": d.kind, "key": d.key, "seeds": list(d.seeds)} for d in found])
    else:
        width = max(len(d.name) for d in found)
        for d in found:
            click.echo(f"{d.name:<{width}}  {d.title} (key: {d.key})")
    return 0
