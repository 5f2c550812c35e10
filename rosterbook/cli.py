"""The command line: each command builds one object, makes one library call, prints the result.

Exit codes: 0 success, 1 invalid data or failed rows, 2 usage. No traceback reaches a user
(set ROSTERBOOK_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from rosterbook import __version__
from rosterbook.errors import RosterbookError


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
