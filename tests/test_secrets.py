"""Secrets and trust: the platform token never lands in a workbook, CSV, log or message; TLS
verification cannot be turned off; an opened workbook cannot choose the add-in's interpreter.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import logging
import re
import secrets
import ssl
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import keyring
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from keyring.backends.fail import Keyring as FailKeyring
from openpyxl import Workbook, load_workbook

from rosterbook import workbook as wbk
from rosterbook.cli import run
from rosterbook.sandbox import Sandbox
from sync_client.errors import InsecureTransport, ScimError
from sync_client.scim import ScimClient

with warnings.catch_warnings():
    # oletools 0.60.2 calls pyparsing's deprecated enablePackrat() at import; pytest runs with -W error.
    warnings.simplefilter("ignore", DeprecationWarning)
    from oletools.olevba import VBA_Parser

from addin import build

# --- the token in artefacts ------------------------------------------------------------------------


def _artefacts(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (each member of a zip such as an .xlsx separately), as bytes."""
    out: dict[str, bytes] = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        out[str(path)] = data
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for name in archive.namelist():
                    out[f"{path}!{name}"] = archive.read(name)
    return out


def _leaks(token: str, texts: dict[str, bytes]) -> list[str]:
    needles = {token.encode(), token.encode("utf-16-le"), token[:16].encode()}
    return [name for name, data in texts.items() if any(n in data for n in needles)]


def test_the_token_never_reaches_a_workbook_csv_log_or_message(
    fresh_sandbox: Callable[..., Sandbox], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "rbtok-" + secrets.token_hex(20)
    sandbox = fresh_sandbox(users=30, seed=3, token=token)
    monkeypatch.setenv("ROSTERBOOK_TOKEN", token)
    monkeypatch.setenv("ROSTERBOOK_PLATFORM", sandbox.url)  # the token is bound to this platform (export, preview, sync)
    monkeypatch.setenv("ROSTERBOOK_HOME", str(tmp_path / "home"))
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's connection logging included
    outputs: list[str] = []

    def cli(*args: str) -> int:
        code = run(list(args))
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        return code

    book = tmp_path / "book.xlsx"
    assert cli("export", str(book), "--platform", sandbox.url) == 0
    wb = load_workbook(book)
    ws = wb[wbk.USERS]
    col = {str(c.value): c.column for c in ws[1] if c.value is not None}
    ws.cell(2, col["Job title"]).value = "Changed title"
    ws.cell(3, col["Username"]).value = str(ws.cell(4, col["Username"]).value).upper()  # a rename onto a taken name: fails
    ws.cell(ws.max_row + 1, col["Username"]).value = "new.person@lumen.example"
    ws.cell(ws.max_row, col["First name"]).value = "New"
    ws.cell(ws.max_row, col["Last name"]).value = "Person"
    ws.cell(ws.max_row, col["Status"]).value = "Pending"
    ws.cell(ws.max_row, col["Email"]).value = "new.person@lumen.example"
    wb.save(book)
    cli("check", str(book))
    cli("preview", str(book), "--json")
    assert cli("sync", str(book), "--yes") == 1  # the rename fails on the platform (409): its message is logged
    cli("sync", str(book), "--yes", "--json")
    logged = load_workbook(book, read_only=True)
    failed = [row for row in logged[wbk.SYNC_LOG].iter_rows(min_row=2, values_only=True) if row[4] == "failed" and row[8]]
    logged.close()  # a read-only workbook keeps its file open until closed
    assert failed  # an error message was logged
    cli("revert", str(book))
    assert cli("export", str(tmp_path / "again.xlsx"), "--platform", sandbox.url) == 0

    # A CSV platform's upload file, written in the same folder while the token is set.
    csv_export = tmp_path / "progression.csv"
    csv_export.write_text("First Name,Last Name,email,account_active\r\nAmara,Okafor,amara@example.com,Active\r\n", encoding="utf-8")
    csv_book = tmp_path / "csv.xlsx"
    assert cli("export", str(csv_book), "--from-csv", str(csv_export)) == 0
    wb = load_workbook(csv_book)
    wb[wbk.USERS].cell(2, 1).value = "Amy"
    wb.save(csv_book)
    assert cli("sync", str(csv_book), "--yes") == 0

    # Error messages: the platform refusing a wrong token, and the client's own description.
    monkeypatch.setenv("ROSTERBOOK_TOKEN", "wrong-" + token)
    assert cli("export", str(tmp_path / "refused.xlsx"), "--platform", sandbox.url) == 1
    assert "refused the token" in outputs[-1]
    monkeypatch.setenv("ROSTERBOOK_TOKEN", token)
    outputs.append(repr(ScimClient(sandbox.url, token=token)))
    with pytest.raises(ScimError) as refused:
        ScimClient(sandbox.url, token="wrong-" + token).discover()
    outputs.append(str(refused.value))

    # `login` reads a token and stores it: with no keyring the error must not echo it.
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        monkeypatch.setattr("sys.stdin", io.StringIO(token + "\n"))
        assert cli("login", sandbox.url, "--token-stdin") == 2
        assert "no OS keyring" in outputs[-1]
    finally:
        keyring.set_keyring(previous)

    assert any(r.method in ("POST", "PATCH") for r in sandbox.request_log)  # the sync really sent changes
    assert len(_artefacts(tmp_path)) > 20
    leaks = _leaks(token, _artefacts(tmp_path))
    leaks += [f"output {i}" for i, text in enumerate(outputs) if token[:16] in text]
    leaks += [f"log record {r.name}: {r.getMessage()[:80]}" for r in caplog.records if token[:16] in r.getMessage()]
    assert leaks == []
    assert caplog.records, "logging was captured"


# --- TLS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("verify", [False, "", " ", 0, None], ids=["False", "empty", "blank", "zero", "None"])
def test_tls_verification_cannot_be_turned_off(verify: Any) -> None:
    with pytest.raises(InsecureTransport, match="TLS verification cannot be turned off"):
        ScimClient("https://platform.example.com/scim/v2", token="t", verify=verify)


def test_plain_http_is_refused_for_anything_but_this_machine() -> None:
    with pytest.raises(InsecureTransport, match="uses plain HTTP"):
        ScimClient("http://platform.example.com/scim/v2", token="t")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


_CONFIG = (b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],"patch":{"supported":true},'
           b'"bulk":{"supported":false},"filter":{"supported":true},"changePassword":{"supported":false},'
           b'"sort":{"supported":false},"etag":{"supported":true},"authenticationSchemes":[]}')


@pytest.fixture
def https_platform(tmp_path: Path) -> Iterator[tuple[str, Path, list[dict[str, str]]]]:
    """A real HTTPS server on 127.0.0.1 with a self-signed certificate: (base URL, its certificate, requests seen)."""
    cert, key = _self_signed(tmp_path)
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(200)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(_CONFIG)))
            self.end_headers()
            self.wfile.write(_CONFIG)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/v2", cert, seen
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_is_refused_before_the_token_is_sent(
    https_platform: tuple[str, Path, list[dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert, seen = https_platform
    # Environment variables that would widen trust in other tools do not turn verification off here.
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    token = "rbtok-" + secrets.token_hex(12)
    with pytest.raises(ScimError, match="TLS verification failed") as refused:
        ScimClient(url, token=token).discover()
    assert token not in str(refused.value)
    assert seen == []  # the handshake failed: no request, no Authorization header, reached the server
    # The same server with its certificate given as the CA bundle: verification passes, and only then the token travels.
    ScimClient(url, token=token, verify=str(cert)).discover()
    assert seen and all(h.get("Authorization") == f"Bearer {token}" for h in seen)


# --- the add-in and the workbooks it opens ----------------------------------------------------------


def _vba(path: Path) -> dict[str, str]:
    parser = VBA_Parser(str(path))
    try:
        return {stream.split("/")[-1]: code for _, stream, _, code in parser.extract_macros()}
    finally:
        parser.close()


def _procedure(module: str, signature: str) -> str:
    start = module.index(signature)
    return module[start : module.index("End Function", start)]


def test_the_add_in_ignores_interpreter_settings_from_opened_workbooks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hostile workbook carries a 'rosterbook.conf' sheet and sits beside a rosterbook.conf file, both
    naming another interpreter and PYTHONPATH (xlwings' layers 1 and 3). The built add-in reads its
    settings from the user's conf file only, and rosterbook's own Settings sheet has no such keys."""
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    evil = {"INTERPRETER_WIN": r"C:\Users\Public\evil\python.exe", "INTERPRETER_MAC": "/tmp/evil/python", "PYTHONPATH": r"\\evil\share",
            "ADD_WORKBOOK_TO_PYTHONPATH": "true", "CONDA_PATH": r"C:\evil"}
    (hostile / "rosterbook.conf").write_text("".join(f'"{k}","{v}"\n' for k, v in evil.items()), encoding="utf-8")
    book = hostile / "book.xlsx"
    wb = Workbook()
    conf = wb.active
    conf.title = "rosterbook.conf"
    for item in evil.items():
        conf.append(list(item))
    wb.save(book)

    xlam = build.build_xlam(tmp_path / "rosterbook.xlam")
    modules = _vba(xlam)
    code = "\n".join(modules.values())
    # Nothing that reads settings from the active workbook or its folder is left in any module.
    for gone in ("GetConfigFromSheet", "GetDirectoryConfigFilePath", '.conf")'):
        assert gone not in code, gone
    assert not re.search(r"^\s*uses_embedded_code = True\s*$", code, re.MULTILINE)  # sheets named *.py never run
    xlwings = modules["xlwings"]
    get_config = _procedure(xlwings, "Function GetConfig(configKey As String")
    assert "GetConfigFromFile(GetConfigFilePath()" in get_config
    for workbook_state in ("ActiveWorkbook", "ThisWorkbook", "Sheets(", ".Path"):
        assert workbook_state not in get_config, workbook_state
    conf_path = _procedure(xlwings, "Function GetConfigFilePath()")
    assert "ActiveWorkbook" not in conf_path and "ThisWorkbook" not in conf_path
    # Each interpreter-choosing key is read through GetConfig, that is from the user's conf file.
    for key in ("INTERPRETER_WIN", "INTERPRETER_MAC", "PYTHONPATH"):
        assert f'GetConfig("{key}"' in xlwings, key

    # rosterbook's own Settings sheet: an interpreter key written into it is refused, not obeyed.
    target = tmp_path / "out.xlsx"
    csv_export = tmp_path / "p.csv"
    csv_export.write_text("First Name,Last Name,email,account_active\r\nAmara,Okafor,amara@example.com,Active\r\n", encoding="utf-8")
    assert run(["export", str(target), "--from-csv", str(csv_export)]) == 0
    wb = load_workbook(target)
    wb[wbk.SETTINGS].append(["INTERPRETER_WIN", evil["INTERPRETER_WIN"], ""])
    wb.save(target)
    capsys.readouterr()
    assert run(["check", str(target)]) == 1
    assert "'INTERPRETER_WIN' is not a setting" in capsys.readouterr().err
