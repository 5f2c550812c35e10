"""Drive LibreOffice Calc through its own UNO API, as a user editing a workbook would: run by the system Python.

Usage: ``/usr/bin/python3 lo_driver.py SCRIPT.json``. The script names the workbook, a list of steps
and where to save::

    {"in": "book.xlsx", "out": "book.xlsx", "profile": "/tmp/profile", "steps": [
        {"type": ["Users", "F2", "New title"]},      # setString: what typing a text does (keeps the cell's format)
        {"sort": ["Users", "A2:V22", 2]},           # sort whole rows of a range by its 0-based column
        {"save": true}]}

It starts its own headless soffice (own profile, own port), so tests can run it in parallel.
This file imports ``uno`` (Debian's python3-uno): it is never imported by the test suite itself.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from typing import Any

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.table import TableSortField  # type: ignore[import-not-found]


def _prop(name: str, value: Any) -> Any:
    item = PropertyValue()
    item.Name, item.Value = name, value
    return item


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _connect(port: int, proc: subprocess.Popen[bytes]) -> Any:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            return resolver.resolve(f"uno:socket,host=127.0.0.1,port={port};urp;StarOffice.ComponentContext")
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _sort(sheet: Any, area: str, column: int) -> None:
    cells = sheet.getCellRangeByName(area)
    field = TableSortField()
    field.Field = column
    field.IsAscending = True
    field.IsCaseSensitive = False
    descriptor = list(cells.createSortDescriptor())
    for item in descriptor:
        if item.Name == "SortFields":
            item.Value = uno.Any("[]com.sun.star.table.TableSortField", (field,))
        elif item.Name == "ContainsHeader":
            item.Value = False
    cells.sort(tuple(descriptor))


def run(script: dict[str, Any]) -> None:
    port = _free_port()
    profile = uno.systemPathToFileUrl(script["profile"])
    proc = subprocess.Popen(["soffice", f"-env:UserInstallation={profile}", "--headless", "--invisible", "--nologo", "--norestore",
                             f"--accept=socket,host=127.0.0.1,port={port};urp;"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ctx = _connect(port, proc)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(script["in"]), "_blank", 0, (_prop("Hidden", True),))
        for step in script["steps"]:
            if "type" in step:
                sheet, address, text = step["type"]
                doc.Sheets.getByName(sheet).getCellRangeByName(address).setString(text)
            elif "sort" in step:
                sheet, area, column = step["sort"]
                _sort(doc.Sheets.getByName(sheet), area, column)
        doc.storeToURL(uno.systemPathToFileUrl(script["out"]), (_prop("FilterName", "Calc MS Excel 2007 XML"),))
        doc.close(True)
        with contextlib.suppress(Exception):  # the bridge goes away while terminating
            desktop.terminate()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        run(json.load(handle))
