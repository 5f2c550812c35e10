"""The add-in file built on Linux: VBA modules exact (oletools), ribbon XML valid, LibreOffice opens it."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # oletools 0.60.2 calls pyparsing's deprecated enablePackrat() at import; pytest runs with -W error.
    warnings.simplefilter("ignore", DeprecationWarning)
    from oletools.olevba import VBA_Parser, decompress_stream

from addin import build, ribbon, udfs
from addin.ovba import compress, decompress

ROOT = Path(__file__).resolve().parent.parent
CUI = "{http://schemas.microsoft.com/office/2006/01/customui}"
REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
CT = "{http://schemas.openxmlformats.org/package/2006/content-types}"


@pytest.fixture(scope="module")
def xlam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_xlam(tmp_path_factory.mktemp("addin") / "rosterbook.xlam")


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return build.modules()


def vba_modules(path: Path) -> dict[str, str]:
    """Module name -> decompressed source, as oletools reads them from the file."""
    parser = VBA_Parser(str(path))
    try:
        return {stream.split("/")[-1]: code for _, stream, _, code in parser.extract_macros()}
    finally:
        parser.close()


# --- compression ------------------------------------------------------------------------------------


def _samples() -> list[tuple[str, bytes]]:
    rng = random.Random(7)
    text = (build.xlwings_vba_dir() / "xlwings_custom_addin.bas").read_bytes()
    return [
        ("empty-ish", b"A"),
        ("three", b"abc"),
        ("repeats", b"ab" * 5000),
        ("zeros 4096", b"\x00" * 4096),
        ("random 4096", rng.randbytes(4096)),
        ("random 3000", rng.randbytes(3000)),
        ("random 9000 + text", rng.randbytes(9000) + b"Sub A()\r\nEnd Sub\r\n" * 50),
        ("xlwings module", text),
        ("chunk edges", text[:4095] + text[:4097]),
    ]


@pytest.mark.parametrize(("name", "data"), _samples(), ids=[n for n, _ in _samples()])
def test_compress_round_trips_through_oletools(name: str, data: bytes) -> None:
    packed = compress(data)
    assert bytes(decompress_stream(bytearray(packed))) == data
    assert decompress(packed) == data


def test_compress_shrinks_source_text() -> None:
    text = (build.xlwings_vba_dir() / "xlwings_custom_addin.bas").read_bytes()
    assert len(compress(text)) < len(text) * 0.6


# --- the VBA project ----------------------------------------------------------------------------------


def test_every_module_decompresses_to_its_exact_source(xlam: Path, sources: dict[str, str]) -> None:
    found = vba_modules(xlam)
    assert set(found) == {"ThisWorkbook", "Sheet1", *sources}
    for name, source in sources.items():
        assert found[name] == source, name
    assert found["ThisWorkbook"].startswith('Attribute VB_Name = "ThisWorkbook"\r\nAttribute VB_Base = "0{00020819-')


def test_xlwings_module_is_the_pinned_installed_one_with_only_the_security_patches(sources: dict[str, str]) -> None:
    module = sources["xlwings"]
    installed = (build.xlwings_vba_dir() / "xlwings_custom_addin.bas").read_bytes().decode("cp1252")
    assert "'Version: 0.37.8\r\n" in module
    assert '"xlwings64-0.37.8.dll"' in module
    assert 'Public Const PROJECT_NAME As String = "rosterbook"' in module
    # No layer that an opened workbook controls is left: conf sheets, a conf file beside it, embedded code.
    for gone in ("GetConfigFromSheet", "GetDirectoryConfigFilePath", '                uses_embedded_code = True\r\n', '"ADD_WORKBOOK_TO_PYTHONPATH", "true"'):
        assert gone not in module
    assert module.count('GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "false")') == 2
    start = module.index("Function GetConfig(configKey As String")
    body = module[start : module.index("End Function", start)]
    assert "GetConfigFilePath()" in body and "ActiveWorkbook" not in body and "ThisWorkbook" not in body
    # Every other line is the installed module's own text.
    ours = set(build._GETCONFIG_USER_ONLY.splitlines()) | set(build._NO_EMBEDDED_CODE.splitlines())
    installed_lines = set(installed.splitlines())
    foreign = [line for line in module.splitlines() if line not in installed_lines and line not in ours]
    assert foreign == ['Public Const PROJECT_NAME As String = "rosterbook"', '        AddExcelDir = GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "false")', '    AddExcelDir = GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "false")']


def test_callback_module_passes_the_tag_to_dispatch(sources: dict[str, str]) -> None:
    module = sources["RosterbookCallbacks"]
    assert "Public Sub RosterbookRibbon(control As IRibbonControl)\r\n" in module
    assert """RunPython "import addin.ribbon as r; r.dispatch('" & control.Tag & "')\"""" in module
    assert module.count("Sub ") == 1 and module.count("End Sub") == 1  # one callback: every button shares it


def test_udf_wrappers_cover_every_udf_with_optional_arguments(sources: dict[str, str]) -> None:
    module = sources["RosterbookUDFs"]
    assert module.startswith('Attribute VB_Name = "RosterbookUDFs"\r\n')
    names = [f.__name__ for f in udfs.FUNCTIONS]
    assert names == ["ROSTERBOOK_CHECK", "ROSTERBOOK_CHECK_TABLE", "ROSTERBOOK_STATUS", "ROSTERBOOK_LIST", "ROSTERBOOK_ESCAPE"]
    for name in names:
        assert module.count(f"Function {name}(") == 1
    assert "Function ROSTERBOOK_CHECK(row, Optional headers, Optional dialect)\r\n" in module
    assert 'ROSTERBOOK_CHECK = XLPy.CallUDF("addin.udfs", "ROSTERBOOK_CHECK", Array(row, headers, dialect, Nothing), ActiveWorkbook, Application.Caller)' in module
    assert "Function ROSTERBOOK_LIST(value, column, Optional dialect)\r\n" in module
    assert 'Array(item, separator), ActiveWorkbook' in module  # no caller parameter: nothing passed for it


# --- the package and the ribbon ------------------------------------------------------------------------


def test_package_parts_and_relationships(xlam: Path) -> None:
    with zipfile.ZipFile(xlam) as zf:
        names = set(zf.namelist())
        assert {"xl/workbook.xml", "xl/vbaProject.bin", "customUI/customUI.xml", "_rels/.rels", "[Content_Types].xml"} <= names
        types = ET.fromstring(zf.read("[Content_Types].xml"))
        overrides = {o.get("PartName"): o.get("ContentType") for o in types.iter(f"{CT}Override")}
        assert overrides["/xl/workbook.xml"] == "application/vnd.ms-excel.addin.macroEnabled.main+xml"
        assert overrides["/xl/vbaProject.bin"] == "application/vnd.ms-office.vbaProject"
        root_rels = {r.get("Type"): r.get("Target") for r in ET.fromstring(zf.read("_rels/.rels")).iter(f"{REL}Relationship")}
        assert root_rels["http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"] == "customUI/customUI.xml"
        wb_rels = {r.get("Type"): r.get("Target") for r in ET.fromstring(zf.read("xl/_rels/workbook.xml.rels")).iter(f"{REL}Relationship")}
        assert wb_rels["http://schemas.microsoft.com/office/2006/relationships/vbaProject"] == "vbaProject.bin"
        workbook = zf.read("xl/workbook.xml").decode()
        assert 'codeName="ThisWorkbook"' in workbook


def test_ribbon_xml_matches_the_customui_structure(xlam: Path) -> None:
    with zipfile.ZipFile(xlam) as zf:
        root = ET.fromstring(zf.read("customUI/customUI.xml"))
    assert root.tag == f"{CUI}customUI"
    ribbon_el = root.find(f"{CUI}ribbon")
    assert ribbon_el is not None
    tabs = ribbon_el.findall(f"{CUI}tabs/{CUI}tab")
    assert [t.get("label") for t in tabs] == ["rosterbook"]
    ids = [el.get("id") for el in root.iter() if el.get("id") is not None]
    assert len(ids) == len(set(ids))
    for group in tabs[0]:
        assert group.tag == f"{CUI}group"
        assert all(child.tag == f"{CUI}button" for child in group)
    buttons = list(root.iter(f"{CUI}button"))
    assert [b.get("label") for b in buttons] == ["Export", "Check", "Preview", "Sync", "Revert selected rows", "Settings"]
    assert {b.get("onAction") for b in buttons} == {build.CALLBACK}
    assert [b.get("tag") for b in buttons] == list(ribbon.ACTIONS)


def test_build_script_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "rosterbook.xlam"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_addin.py"), str(target)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    assert set(vba_modules(target)) == {"ThisWorkbook", "Sheet1", "xlwings", "RosterbookCallbacks", "RosterbookUDFs"}


# --- LibreOffice ------------------------------------------------------------------------------------------


def _soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("LibreOffice (soffice) is missing on CI: .ci/run installs libreoffice-calc-nogui")
        pytest.skip("LibreOffice (soffice) is not installed; apt-get install -y libreoffice-calc-nogui")
    return found


def test_libreoffice_opens_the_addin_and_keeps_its_vba(xlam: Path, sources: dict[str, str], tmp_path: Path) -> None:
    soffice = _soffice()
    out = tmp_path / "out"
    # LibreOffice's type detection does not know the add-in content type: name the import filter.
    command = [
        soffice,
        f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
        "--headless",
        "--infilter=Calc MS Excel 2007 VBA XML",
        "--convert-to",
        "xlsm:Calc MS Excel 2007 VBA XML",
        "--outdir",
        str(out),
        str(xlam),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    converted = out / "rosterbook.xlsm"
    assert done.returncode == 0, done.stderr
    assert converted.exists(), done.stdout + done.stderr
    from openpyxl import load_workbook

    wb = load_workbook(converted)
    assert wb.sheetnames == ["rosterbook"]
    assert "ribbon" in str(wb["rosterbook"]["A1"].value)
    # LibreOffice read every module of our VBA project and wrote it back out (adding a final line break).
    again = vba_modules(converted)
    for name, source in sources.items():
        assert again[name].rstrip("\r\n") == source.rstrip("\r\n"), name
    with zipfile.ZipFile(converted) as zf:
        assert b"RosterbookRibbon" in zf.read("customUI/customUI.xml")
