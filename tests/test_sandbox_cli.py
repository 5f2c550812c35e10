"""`rosterbook sandbox`: serves in the foreground until Ctrl-C, never prints the token, refuses bad binds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from rosterbook.cli import run
from rosterbook.sandbox import Sandbox

TOKEN = "env-token-Zq81"


def test_serves_until_interrupted_without_printing_the_token(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    env = {**os.environ, "ROSTERBOOK_SANDBOX_TOKEN": TOKEN, "ROSTERBOOK_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-c", "import sys; from rosterbook.cli import main; main(sys.argv[1:])",
               "sandbox", "--port", "0", "--db", str(db), "--users", "25"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("Press Ctrl-C"):
            lines.append(process.stdout.readline())
        first = lines[0]
        found = re.match(r"Serving SCIM 2\.0 at (http://127\.0\.0\.1:\d+/v2) \(25 users, \d+ groups; data in (.+)\)\.", first)
        assert found, first
        url = found.group(1)
        assert found.group(2) == str(db)
        authorised = requests.get(f"{url}/Users", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        anonymous = requests.get(f"{url}/Users", timeout=30)
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=60)
        out = "".join(lines) + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pipe in (process.stdout, process.stderr):  # closed here, not by the garbage collector during a later test
            if pipe is not None:
                pipe.close()

    assert authorised.status_code == 200 and authorised.json()["totalResults"] == 25
    assert anonymous.status_code == 401
    assert process.returncode == 0
    assert "ROSTERBOOK_SANDBOX_TOKEN" in out and "Stopped." in out
    assert TOKEN not in out + err
    assert db.exists() and not (tmp_path / "home").exists()


def test_non_loopback_host_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "never.sqlite3"

    code = run(["sandbox", "--host", "0.0.0.0", "--port", "0", "--db", str(db)])

    assert code == 2
    assert "Error: refusing to serve on '0.0.0.0': it is not a loopback address" in capsys.readouterr().err
    assert not db.exists()


def test_busy_port_is_a_usage_error(fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    busy = fresh_sandbox(users=0)

    code = run(["sandbox", "--port", str(busy.port), "--db", str(tmp_path / "x.sqlite3")])

    assert code == 2
    assert f"Error: cannot serve on 127.0.0.1:{busy.port}:" in capsys.readouterr().err


def test_negative_users_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sandbox", "--users", "-1"]) == 2
    assert "Invalid value for '--users'" in capsys.readouterr().err


def test_stops_on_sigterm_and_when_started_with_sigint_ignored(tmp_path: Path) -> None:
    """A service manager sends SIGTERM; a parent that ignores SIGINT passes that on to its children: both still stop it."""
    db = tmp_path / "term.sqlite3"
    launcher = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                "import subprocess; sys.exit(subprocess.call([sys.executable, '-c', 'import sys; from rosterbook.cli import main; main(sys.argv[1:])', "
                f"'sandbox', '--port', '0', '--db', {str(db)!r}, '--users', '3']))")
    for sig in (signal.SIGINT, signal.SIGTERM):
        outer = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 env={**os.environ, "ROSTERBOOK_HOME": str(tmp_path / "home")})
        try:
            assert outer.stdout is not None
            line = outer.stdout.readline()
            while line and not line.startswith("Press Ctrl-C"):
                line = outer.stdout.readline()
            children = subprocess.run(["pgrep", "-P", str(outer.pid)], capture_output=True, text=True, check=False).stdout.split()
            assert len(children) == 1
            os.kill(int(children[0]), sig)
            out, _err = outer.communicate(timeout=60)
        finally:
            if outer.poll() is None:
                outer.kill()
                outer.wait()
            for pipe in (outer.stdout, outer.stderr):
                if pipe is not None:
                    pipe.close()
        assert outer.returncode == 0 and "Stopped." in out
