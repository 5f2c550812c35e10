"""Render the template and an exported, checked workbook with LibreOffice headless, for docs/.

    python scripts/make_screenshots.py     # writes docs/screenshots/*.png

Needs LibreOffice (Debian: libreoffice-calc-nogui) and pdftoppm (poppler-utils). Each workbook
is converted to PDF by ``soffice --headless --convert-to pdf`` (every sheet prints on pages
one page wide, as rosterbook sets them up), then the wanted pages become PNGs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import openpyxl

from rosterbook import app

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
SAMPLE = ROOT / "tests" / "samples" / "progression_export.csv"


Crop = tuple[int, int, int, int]
"""x, y, width, height in pixels at 150 dpi (a landscape page is 1650 x 1275): the part of the page with the sheet."""


def to_pngs(book: Path, stem: str, pages: dict[int, tuple[str, Crop]], folder: Path) -> list[Path]:
    """Convert ``book`` to PDF with LibreOffice and the given pages (1-based) to ``docs/screenshots/<stem>-<name>.png``."""
    subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(folder), str(book)],
                   check=True, capture_output=True, timeout=180)
    pdf = folder / f"{book.stem}.pdf"
    written = []
    for page, (name, (x, y, width, height)) in pages.items():
        target = OUT / f"{stem}-{name}"
        subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", str(page), "-l", str(page), "-x", str(x), "-y", str(y),
                        "-W", str(width), "-H", str(height), "-singlefile", str(pdf), str(target)],
                       check=True, capture_output=True, timeout=120)
        written.append(target.with_suffix(".png"))
    return written


def checked_workbook(folder: Path) -> Path:
    """A Progression workbook exported from the sample export, edited with planted mistakes, then checked."""
    book = folder / "progression-checked.xlsx"
    app.export_workbook(book, from_csv=SAMPLE)
    wb = openpyxl.load_workbook(book)
    ws = wb["Users"]
    ws["G3"] = "actve"                       # a typo in a status word
    ws["C5"] = "siobhan.oneill@example"      # an email without a domain
    ws["E6"] = "Enginering"                  # a team the platform does not have (a warning)
    ws["F9"] = "not an email"                # a manager must be an email
    ws.append(["Nia", None, "nia.hire@example.com", None, None, None, "Pending"])  # a new user without a last name
    ws["E4"] = "Design"                      # a team change that is fine
    wb.save(book)
    app.check_workbook(book)
    app.preview_workbook(book)
    # Long notes run on to the right in Excel; for a page, print the Preview's seven columns only.
    wb = openpyxl.load_workbook(book)
    preview = wb["Preview"]
    preview.print_area = f"A1:G{preview.max_row}"
    wb.save(book)
    return book


def main() -> int:
    """Write the screenshots; exit 2 when LibreOffice or pdftoppm is missing."""
    for tool in ("soffice", "pdftoppm"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install libreoffice-calc-nogui poppler-utils)", file=sys.stderr)
            return 2
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        template = folder / "UserTemplate-progression.xlsx"
        shutil.copy(ROOT / "templates" / "UserTemplate-progression.xlsx", template)
        made = to_pngs(template, "template", {1: ("users", (100, 130, 1450, 40)), 4: ("settings", (100, 130, 1450, 215))}, folder)
        made += to_pngs(checked_workbook(folder), "checked", {1: ("users", (100, 130, 1450, 300)), 2: ("preview", (100, 130, 1450, 420))}, folder)
    for path in made:
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
