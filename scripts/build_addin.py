#!/usr/bin/env python3
"""Build the Excel add-in ``rosterbook.xlam`` (works on Linux; no Excel needed).

    .venv/bin/python scripts/build_addin.py [OUTPUT]     (default: build/rosterbook.xlam)

The VBA project holds the pinned xlwings VBA module taken from the installed xlwings package
(patched to read settings only from the user conf file), the ribbon callback module and the
generated UDF wrappers; ``customUI/customUI.xml`` holds the ribbon tab. See ``addin/build.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Build the add-in at the given path (or the default) and print where it went."""
    from addin.build import build_xlam
    from rosterbook.errors import RosterbookError

    if len(argv) > 1 or (argv and argv[0] in ("-h", "--help")):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    target = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "build" / "rosterbook.xlam"
    try:
        path = build_xlam(target)
    except RosterbookError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
