"""Generate the committed workbook templates from the dialects, so they never drift.

    python scripts/make_template.py            # templates/UserTemplate.xlsx (scim) + one per seed dialect
    python scripts/make_template.py --check    # exit 1 when a committed template differs structurally

``templates/UserTemplate.xlsx`` is the SCIM template (the embedded sandbox's platform);
``templates/UserTemplate-<dialect>.xlsx`` are the CSV platforms' templates.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rosterbook.core.dialects import dialect_names, load_dialect
from rosterbook.xlsx import build_template, template_structure

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def template_path(dialect: str, folder: Path = TEMPLATES) -> Path:
    """Where the template for ``dialect`` lives."""
    return folder / ("UserTemplate.xlsx" if dialect == "scim" else f"UserTemplate-{dialect}.xlsx")


def generate(folder: Path = TEMPLATES) -> list[Path]:
    """Write every template into ``folder``; return their paths."""
    out = []
    for name in dialect_names():
        path = template_path(name, folder)
        build_template(path, load_dialect(name)).save()
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    """Generate the templates, or with --check compare the committed ones with a fresh generation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    if not args.check:
        for path in generate():
            print(f"wrote {path.relative_to(TEMPLATES.parent)}")
        return 0
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for fresh in generate(Path(tmp)):
            committed = TEMPLATES / fresh.name
            if not committed.exists() or template_structure(committed) != template_structure(fresh):
                print(f"{committed.name}: differs from a fresh generation; run python scripts/make_template.py")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
