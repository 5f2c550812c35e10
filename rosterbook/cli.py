"""The command line: each command builds one object, makes one library call, prints the result.

Exit codes: 0 success, 1 invalid data or failed rows, 2 usage. No traceback reaches a user
(set ROSTERBOOK_DEBUG=1 to see one).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from rosterbook import __version__
from rosterbook.errors import RosterbookError, UsageError

if TYPE_CHECKING:
    from rosterbook.results import RowResult


def emit_json(data: Any) -> None:
    """Print the library's result as JSON, exactly as returned (keys sorted for stable output)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True, default=str))


def _echo_failed_rows(book: Path, rows: Iterable[RowResult]) -> None:
    """One line per row that failed or went through only in part, addressed to its sheet row."""
    for row in rows:
        if row.outcome in ("failed", "partial"):
            click.echo(f"{book.name}!row {row.row} {row.key}: {row.action} {'failed' if row.outcome == 'failed' else 'partly applied'}: {row.message}")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="rosterbook")
def cli() -> None:
    """rosterbook: manage an HR or learning platform's users from an Excel workbook.

    With no platform configured, commands use the embedded sandbox: a local SCIM 2.0 server
    with a demo organisation, started on demand.
    """


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console entry point: run the CLI, turning every error into a message and an exit code."""
    # Text from a platform may hold what the terminal's encoding cannot (a lone surrogate): it is printed
    # escaped (\udc80, which JSON reads back as the same character), never a crash.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
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
        click.echo(f"Error: {_scrubbed(str(exc))}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:
        if os.environ.get("ROSTERBOOK_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(exc).__name__}: {_scrubbed(str(exc))}). Set ROSTERBOOK_DEBUG=1 for details.", err=True)
        return 1
    except SystemExit as exc:  # click's --help / --version exit
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return result if isinstance(result, int) else 0


def _scrubbed(text: str) -> str:
    """A message without the token or echoed credentials (the last line of defence before the terminal)."""
    from rosterbook.core.redact import scrub

    return scrub(text, [os.environ.get("ROSTERBOOK_TOKEN", "").strip()])


# --- commands ---------------------------------------------------------------------------------
# Each command: parse options, make one library call, print (text or --json), return an exit code.


_WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")


@cli.command("check")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
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

        report = check_csv(file, dialect, note=lambda text: click.echo(text, err=True))
    if as_json:
        emit_json(report.to_dict())
    else:
        if report.problems:
            click.echo(report.render_text())
        click.echo(report.summary(), err=True)
    return 0 if report.ok else 1


def _check_workbook(file: Path, dialect: str | None, no_write: bool) -> Any:
    """Workbooks are checked by ``rosterbook.app.check_workbook`` (marks cells unless ``--no-write``)."""
    from rosterbook.app import check_workbook

    with progress_bars(not as_json_flag()) as progress:
        return check_workbook(file, dialect=dialect, write=not no_write, progress=progress)


# --- the workbook round trip: export, preview, sync, revert, demo ---------------------------


def as_json_flag() -> bool:
    """True when the running command was given --json (progress bars stay off then)."""
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.params.get("as_json"))


class _Bars:
    """One rich progress bar per stage, on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=True)
        self.tasks: dict[str, Any] = {}
        self.bars.start()

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bars.add_task(stage, total=total or None)
        self.bars.update(self.tasks[stage], completed=done, total=total or None)

    def stop(self) -> None:
        self.bars.stop()


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Any]:
    """The one progress helper: bars on a terminal while the block runs (removed before the result is
    printed); ``None`` (no progress) with --json or when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    bars = _Bars()
    try:
        yield bars
    finally:
        bars.stop()


_BOOK = click.argument("book", type=click.Path(dir_okay=True, path_type=Path))
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (exactly what the library returns).")


@cli.command("export")
@_BOOK
@click.option("--platform", metavar="URL", help="SCIM base URL of the platform (default: the embedded sandbox). ROSTERBOOK_TOKEN may be sent to it.")
@click.option("--dialect", metavar="NAME", help="Dialect of the --from-csv file (recognised from its header row when omitted).")
@click.option("--from-csv", "from_csv", type=click.Path(dir_okay=True, path_type=Path), metavar="EXPORT.csv",
              help="Fill the workbook from a CSV-only platform's own export file.")
@click.option("--keep-edits", is_flag=True, help="Refresh from the platform and re-apply the sheet's unsynced edits on top "
              "(fields edited on both sides become conflicts in the preview).")
@click.option("--force", is_flag=True, help="Overwrite a workbook whose edits were never synced.")
@_JSON
def export_command(book: Path, platform: str | None, dialect: str | None, from_csv: Path | None, keep_edits: bool, force: bool,
                   as_json: bool) -> int:
    """Fill BOOK.xlsx with the platform's users (created from the template when missing).

    Everything read from the platform is written as text. An existing workbook is exported from the
    platform in its Settings unless --platform names another (refused while it has unsynced edits).
    Re-exporting into a workbook with unsynced edits is refused unless --keep-edits (keep them) or
    --force (discard them).
    """
    from rosterbook.app import export_workbook

    with progress_bars(not as_json) as progress:
        result = export_workbook(book, platform=platform, dialect=dialect, from_csv=from_csv, force=force, keep_edits=keep_edits,
                                 progress=progress, named_platform=platform)
    if as_json:
        emit_json(result.to_dict())
    else:
        for warning in result.get("warnings") or ():
            click.echo(f"Warning: {warning}", err=True)
        source = f"{from_csv.name}" if from_csv is not None else (result["platform_url"] or "the embedded sandbox")
        click.echo(f"Exported {result['rows']} users from {source} into {book} (dialect {result['dialect']}, {len(result['columns'])} columns).")
        if result.dialect_note:
            click.echo(f"{from_csv.name if from_csv is not None else 'export'}: {result.dialect_note}.", err=True)
        kept = result.keep_edits
        if kept is not None:
            click.echo(f"Kept the unsynced edits of {len(kept['rows'])} rows.")
            if kept["conflicts"]:
                click.echo(f"Edited both in the sheet and on the platform (conflicts, see `rosterbook preview`): rows {', '.join(map(str, kept['conflicts']))}.")
            if kept["gone"]:
                click.echo(f"No longer on the platform, their edits dropped: {', '.join(kept['gone'])}.", err=True)
            if kept["refreshed"]:
                click.echo(f"Refreshed from the platform (damaged snapshot entries): rows {', '.join(map(str, kept['refreshed']))}.", err=True)
    return 0


@cli.command("preview")
@_BOOK
@click.option("--skip-rows", metavar="ROWS", help="Leave these sheet rows out, e.g. 7,9-12.")
@_JSON
def preview_command(book: Path, skip_rows: str | None, as_json: bool) -> int:
    """Show what a sync would do (creates, field-by-field updates, archives, renames, conflicts,
    invitations, seats) and write it to the Preview sheet. Nothing is sent.

    Exit 1 when rows have errors or conflicts, or the plan is refused; 0 otherwise.
    """
    from rosterbook.app import parse_rows, preview_workbook

    with progress_bars(not as_json) as progress:
        plan = preview_workbook(book, skip_rows=parse_rows(skip_rows), progress=progress)
    if as_json:
        emit_json(plan.to_dict())
    else:
        click.echo(plan.render_text())
        click.echo(f"Written to the Preview sheet of {book}.", err=True)
    return 1 if plan.blockers() else 0


def _counts_line(plan: Any) -> str:
    shown = [f"{n} {a}" for a, n in plan.counts.items() if n and a != "unchanged"]
    return ", ".join(shown) or "nothing to change"


@cli.command("sync")
@_BOOK
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--skip-rows", metavar="ROWS", help="Leave these sheet rows out (rows with errors or conflicts), e.g. 7,9-12.")
@click.option("--confirm-deletions", is_flag=True, help="Go ahead although more users would lose access than the deletion guard allows.")
@click.option("--batch", type=click.IntRange(min=1), default=None, hidden=True, help="Rows per batch (tests and tuning).")
@_JSON
def sync_command(book: Path, yes: bool, skip_rows: str | None, confirm_deletions: bool, batch: int | None, as_json: bool) -> int:
    """Send only what changed to the platform (SCIM), or write the upload file (CSV platforms).

    Refuses when rows have errors or conflicts unless --skip-rows names them. Asks for
    confirmation showing the preview counts (or --yes). Each row's outcome goes to the Sync log
    sheet and the Sync status column; re-running after a failure sends only what is still different.
    Exit 1 when any row failed.
    """
    from rosterbook.app import parse_rows, sync_workbook

    def confirm(plan: Any) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("sync needs a confirmation: run it in a terminal, or pass --yes. Nothing was sent.")
        click.echo(f"Sync {book.name}: {_counts_line(plan)}.", err=True)
        if plan.invitations:
            click.echo(f"Invitation emails: {len(plan.invitations)}.", err=True)
        return click.confirm("Send these changes?", default=False, err=True)

    with progress_bars(not as_json) as progress:
        from rosterbook.engine import BATCH

        result = sync_workbook(book, confirm=confirm, skip_rows=parse_rows(skip_rows), confirm_deletions=confirm_deletions, progress=progress,
                               batch=batch or BATCH)
    if as_json:
        emit_json(result.to_dict())
    else:
        _echo_failed_rows(book, result.rows)
        click.echo(result.summary)
        if result.rows:
            click.echo(f"Sync id: {result.sync_id} (`rosterbook undo {book.name}` puts back what it changed).")
    return 0 if result.ok else 1


@cli.command("revert")
@_BOOK
@click.option("--rows", metavar="ROWS", help="Only these sheet rows, e.g. 7,9-12 (default: every edited row, and deleted rows come back).")
@_JSON
def revert_command(book: Path, rows: str | None, as_json: bool) -> int:
    """Put rows back to their exported values (new, never-synced rows are cleared)."""
    from rosterbook.app import parse_rows, revert_rows

    result = revert_rows(book, parse_rows(rows) if rows is not None else None)
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(f"Reverted {len(result['reverted'])} rows, cleared {len(result['cleared'])} new rows, restored {len(result['restored'])} deleted rows.")
    return 0


@cli.command("undo")
@_BOOK
@click.option("--sync", "sync_id", metavar="ID", help="The sync to undo: its id in the Sync log's Sync id column (or its last part). "
              "Default: the last sync that changed something.")
@click.option("--rows", metavar="ROWS", help="Only the users on these sheet rows, e.g. 7,9-12.")
@click.option("--preview", "preview_only", is_flag=True, help="Only show the reverse plan (and write it to the Preview sheet); send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--confirm-deletions", is_flag=True, help="Go ahead although the undo would archive more users than the deletion guard allows.")
@click.option("--batch", type=click.IntRange(min=1), default=None, hidden=True, help="Rows per batch (tests and tuning).")
@_JSON
def undo_command(book: Path, sync_id: str | None, rows: str | None, preview_only: bool, yes: bool, confirm_deletions: bool, batch: int | None,
                 as_json: bool) -> int:
    """Undo a sync: put back what it changed (users it created are archived, never deleted), as an ordinary sync.

    A field changed on the platform since that sync is kept as it is now (a conflict, never overwritten).
    CSV platforms: writes the reverse upload file. Exit 1 when any row failed (or, with --preview, when the
    undo would be refused).
    """
    from rosterbook.app import parse_rows
    from rosterbook.undo import kept_lines, preview_undo, undo_sync

    chosen = parse_rows(rows) if rows is not None else None
    if preview_only:
        with progress_bars(not as_json) as progress:
            plan = preview_undo(book, sync_id=sync_id, rows=chosen, confirm_deletions=confirm_deletions, progress=progress)
        if as_json:
            emit_json(plan.to_dict())
        else:
            click.echo(plan.render_text())
            click.echo(f"Written to the Preview sheet of {book}.", err=True)
        return 1 if any(b.kind != "conflicts" for b in plan.blockers()) else 0

    def confirm(plan: Any) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("undo needs a confirmation: run it in a terminal, or pass --yes. Nothing was sent.")
        lines = plan.render_text().splitlines()
        click.echo("\n".join(lines[:60]), err=True)
        if len(lines) > 60:
            click.echo(f"... {len(lines) - 60} more lines: `rosterbook undo {book.name} --preview` shows them all.", err=True)
        return click.confirm(f"Undo sync {plan.undo_of}: {_counts_line(plan)}?", default=False, err=True)

    from rosterbook.engine import BATCH

    with progress_bars(not as_json) as progress:
        result = undo_sync(book, sync_id=sync_id, rows=chosen, confirm=confirm, confirm_deletions=confirm_deletions, progress=progress,
                           batch=batch or BATCH)
    if as_json:
        emit_json(result.to_dict())
    else:
        _echo_failed_rows(book, result.rows)
        for line in kept_lines(result):
            click.echo(f"Kept: {line}")
        for note in result.cannot_undo:
            click.echo(f"Cannot be undone: {note}", err=True)
        click.echo(result.summary)
    return 0 if result.ok else 1


@cli.command("demo")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), help="Data folder of the embedded sandbox (default: ROSTERBOOK_HOME or ~/.local/share/rosterbook).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to keep the demo workbook (default: <home>/demo/demo.xlsx).")
def demo_command(home: Path | None, out: Path | None) -> int:
    """Run the whole round trip against the embedded sandbox: export, edit, check, preview, sync, export again."""
    from rosterbook.demo import run_demo

    return run_demo(home=home, out=out, echo=click.echo)


@cli.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback only unless --allow-remote).")
@click.option("--port", default=7643, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on (0 = any free port).")
@click.option("--db", "db", type=click.Path(dir_okay=False, path_type=Path), help="SQLite file (default: <ROSTERBOOK_HOME>/sandbox.sqlite3, shared with the embedded sandbox).")
@click.option("--users", type=click.IntRange(min=0), help="Users in the demo organisation of a new, empty database (default 300; 0 = empty).")
@click.option("--token", envvar="ROSTERBOOK_SANDBOX_TOKEN", show_envvar=True, help="Require this bearer token (never printed).")
@click.option("--seed", default=1, show_default=True, help="Random seed of the demo organisation.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --host (other machines can then reach it: set a --token).")
def sandbox_command(host: str, port: int, db: Path | None, users: int | None, token: str | None, seed: int, allow_remote: bool) -> int:
    """Serve the sandbox platform (SCIM 2.0 with a demo organisation) in the foreground until Ctrl-C.

    Data is kept in the SQLite file and survives restarts; a new or empty database is seeded with
    the demo organisation.
    """
    from rosterbook.sandbox import DB_NAME, default_home, start_sandbox

    path = db if db is not None else default_home() / DB_NAME
    running = start_sandbox(path, host=host, port=port, users=users, token=token, seed=seed, allow_remote=allow_remote)
    try:
        counts = f"{running.storage.count('User')} users, {running.storage.count('Group')} groups"
        click.echo(f"Serving SCIM 2.0 at {running.url} ({counts}; data in {path}).")
        if users is not None and not running.seeded and users != running.storage.count("User"):
            click.echo(f"Note: --users {users} ignored: the database already holds data (use another --db for a new organisation).", err=True)
        if token is not None:
            source = click.get_current_context().get_parameter_source("token")
            where = "ROSTERBOOK_SANDBOX_TOKEN" if source == click.core.ParameterSource.ENVIRONMENT else "--token"
            click.echo(f"Requests need 'Authorization: Bearer <token>' (the token from {where}).")
        if allow_remote and token is None:
            click.echo("Warning: serving beyond this machine without a token: anyone who can reach it can change its data.", err=True)
        click.echo("Press Ctrl-C to stop.")
        _serve_until_stopped(running)
        click.echo("Stopped.")
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        running.stop()
    return 0


def _serve_until_stopped(running: Any) -> None:
    """Wait until Ctrl-C (SIGINT) or SIGTERM, whatever the signal dispositions this process inherited.

    A process started from one that ignores SIGINT (a service manager, some test runners) would
    otherwise never see Ctrl-C: the handlers are set here, and restored afterwards.
    """
    import signal
    import threading

    stop = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.is_set() and running.running:
            stop.wait(0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command("login")
@click.argument("url")
@click.option("--token-stdin", is_flag=True, help="Read the token from standard input instead of prompting (for scripts).")
def login_command(url: str, token_stdin: bool) -> int:
    """Store the token for the SCIM platform at URL in the OS keyring (typed with hidden input).

    The token is never printed, logged or written into a workbook, and is only ever sent to URL.
    Where no keyring exists (headless Linux, CI), set ROSTERBOOK_TOKEN and ROSTERBOOK_PLATFORM=URL instead.
    """
    from sync_client.auth import normalise_url, store_token

    url = normalise_url(url)  # a bad URL is refused before the token is typed
    if token_stdin:
        token = sys.stdin.readline()
    else:
        token = str(click.prompt("Token", hide_input=True))
    where = store_token(url, token)
    click.echo(f"Token stored in {where}.")
    return 0


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


# --- addin (Excel add-in for the current user) ------------------------------------------------


@cli.group("addin")
def addin_group() -> None:
    """Install, remove or inspect the Excel add-in (ribbon tab and cell functions).

    Windows and macOS; the add-in runs the Python interpreter that ran `addin install`.
    """


_TARGET_OPTION = click.option(
    "--target",
    "target",
    type=click.Path(file_okay=False, path_type=Path),
    help="Put the add-in and its conf file into this folder instead of Excel's start-up folder (works on any OS).",
)


def _addin_report(report: Any, as_json: bool) -> None:
    if as_json:
        emit_json(report.to_dict())
        return
    for line in report.actions:
        click.echo(line)
    state = "installed" if report.installed else "not installed"
    click.echo(f"add-in: {report.addin_path} ({state})")
    click.echo(f"conf:   {report.conf_path}" + (f" (interpreter {report.interpreter})" if report.interpreter else ""))
    for note in report.notes:
        click.echo(f"note: {note}", err=True)


@addin_group.command("install")
@_TARGET_OPTION
@click.option("--xlam", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="Install this prebuilt rosterbook.xlam instead of building one.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def addin_install_command(target: Path | None, xlam: Path | None, as_json: bool) -> int:
    """Install the add-in for the current user, pointing it at this Python interpreter."""
    from rosterbook.addin_install import install

    report = install(target, xlam=xlam)
    _addin_report(report, as_json)
    if not as_json and report.platform != "target":
        click.echo("Restart Excel: the rosterbook tab appears on the ribbon.")
    return 0


@addin_group.command("uninstall")
@_TARGET_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def addin_uninstall_command(target: Path | None, as_json: bool) -> int:
    """Remove the add-in and its conf file."""
    from rosterbook.addin_install import uninstall

    _addin_report(uninstall(target), as_json)
    return 0


@addin_group.command("status")
@_TARGET_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def addin_status_command(target: Path | None, as_json: bool) -> int:
    """Show where the add-in is installed and which interpreter it runs; exit 1 when a check fails."""
    from rosterbook.addin_install import status

    report = status(target)
    _addin_report(report, as_json)
    return 0 if report.ok else 1
