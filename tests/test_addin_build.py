"""The add-in file built on Linux: VBA modules exact (oletools), ribbon XML valid, LibreOffice opens it."""

from __future__ import annotations

import random
import re
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from support.libreoffice import soffice as libreoffice_soffice

with warnings.catch_warnings():
    # oletools 0.60.2 calls pyparsing's deprecated enablePackrat() at import; pytest runs with -W error.
    warnings.simplefilter("ignore", DeprecationWarning)
    from oletools.olevba import VBA_Parser, decompress_stream

from addin import build, ribbon, udfs
from addin.ovba import compress, decompress
from rosterbook import __version__

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
    assert found["ThisWorkbook"].endswith(build.this_workbook_source())
    # VBA refuses physical lines over 1023 characters.
    for name, source in found.items():
        assert max(len(line) for line in source.split("\r\n")) <= 1023, name


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


_PROCEDURE = re.compile(r"^(?:(Public|Private) )?(Sub|Function) (\w+)\(([^)]*)\)", re.MULTILINE)


def procedures(source: str) -> dict[str, tuple[str, str, str]]:
    """Procedure name -> (scope, kind, parameters) of a VBA module."""
    return {m.group(3): (m.group(1) or "Public", m.group(2), m.group(4)) for m in _PROCEDURE.finditer(source)}


def code(source: str) -> str:
    """A VBA module without its comment lines."""
    return "\r\n".join(line for line in source.split("\r\n") if not line.lstrip().startswith("'"))


def body(source: str, name: str) -> str:
    """The code of one procedure, from its declaration to its End line (comment lines left out)."""
    text = code(source)
    kind = "Function" if f"Function {name}(" in text else "Sub"
    begin = text.index(f"{kind} {name}(")
    return text[begin : text.index(f"End {kind}", begin)]


def test_callback_module_guards_then_passes_the_tag_to_dispatch(xlam: Path) -> None:
    module = vba_modules(xlam)["RosterbookCallbacks"]
    ribbon_sub = body(module, "RosterbookRibbon")
    assert "RosterbookRibbon(control As IRibbonControl)" in ribbon_sub
    assert """RunPython "import addin.ribbon as r; r.dispatch('" & control.Tag & "')\"""" in ribbon_sub
    # The guard comes first and stops before RunPython, which reads ActiveWorkbook.FullName (error 91 without a workbook).
    assert ribbon_sub.index("RosterbookGuard(control.Tag)") < ribbon_sub.index("If problem <> \"\" Then") < ribbon_sub.index("Exit Sub") < ribbon_sub.index("RunPython")
    assert code(module).count("RunPython") == 1


def test_the_guard_says_what_is_missing_without_a_vba_error(xlam: Path) -> None:
    module = vba_modules(xlam)["RosterbookCallbacks"]
    guard = body(module, "RosterbookGuard")
    # ActiveWorkbook is read only here, inside On Error Resume Next, and Nothing is a message, not error 91.
    assert code(module).count("ActiveWorkbook") == 1
    assert guard.index("On Error Resume Next") < guard.index("Set wb = ActiveWorkbook") < guard.index("On Error GoTo 0") < guard.index("If wb Is Nothing Then")
    assert 'RosterbookGuard = "Open a workbook first' in guard
    # Every button but Export and New workbook needs a rosterbook workbook (its Settings sheet, A1 "Setting").
    assert guard.index('If tag = "export" Then Exit Function') < guard.index("If Not RosterbookIsBook(wb) Then")
    assert "is not a rosterbook workbook" in guard
    assert "#If Mac Then" in guard and "checkcolumn" in guard
    is_book = body(module, "RosterbookIsBook")
    assert 'wb.Worksheets("Settings")' in is_book and '= "Setting")' in is_book
    from rosterbook.workbook import SETTINGS, SETTINGS_HEADERS

    assert (SETTINGS, SETTINGS_HEADERS[0]) == ("Settings", "Setting")
    # The buttons are greyed out by the same guard.
    assert 'enabled = (RosterbookGuard(control.Tag) = "")' in body(module, "RosterbookEnabled")


def test_every_ribbon_callback_exists_in_the_vba_with_its_signature(xlam: Path) -> None:
    with zipfile.ZipFile(xlam) as zf:
        root = ET.fromstring(zf.read("customUI/customUI.xml"))
    found = vba_modules(xlam)
    public = {name: spec for module in found.values() for name, spec in procedures(module).items() if spec[0] == "Public"}
    expected = {"onAction": "control As IRibbonControl", "getEnabled": "control As IRibbonControl, ByRef enabled", "onLoad": "ribbon As IRibbonUI"}
    named = {(attribute, el.get(attribute)) for el in root.iter() for attribute in expected if el.get(attribute)}
    assert {a for a, _ in named} == set(expected)
    for attribute, callback in named:
        assert callback in public, callback
        assert public[callback][1:] == ("Sub", expected[attribute]), callback


def test_macro_options_register_every_function_with_its_doc_strings(xlam: Path) -> None:
    found = vba_modules(xlam)
    module = found["RosterbookUDFs"]
    register = body(module, "RosterbookRegisterFunctions")
    assert register.count("Application.MacroOptions Macro:=book & ") == 2 * len(udfs.FUNCTIONS)  # with help, and without where refused
    for func in udfs.FUNCTIONS:
        shown = [a for a in udfs.arguments(func) if not a.vba]
        assert shown and all(a.doc for a in shown), func.__name__
        docs = ", _\r\n            ".join(build._vba_string(a.doc) for a in shown)
        call = (
            f'    Application.MacroOptions Macro:=book & "{func.__name__}", _\r\n'
            f"        Description:={build._vba_string(udfs.description(func))}, _\r\n"
            '        Category:="rosterbook", _\r\n'
            f"        ArgumentDescriptions:=Array({docs})\r\n"
        )
        assert call in register, func.__name__
    assert 'book = "\'" & ThisWorkbook.Name & "\'!"' in register
    # Registered when the add-in loads.
    this_workbook = found["ThisWorkbook"]
    assert "Private WithEvents App As Application" in this_workbook
    opened = body(this_workbook, "Workbook_Open")
    assert "Set App = Application" in opened and "RosterbookRegisterFunctions" in opened


def test_settings_changes_recalculate_the_functions(xlam: Path) -> None:
    found = vba_modules(xlam)
    assert "RosterbookSheetChanged Sh" in body(found["ThisWorkbook"], "App_SheetChange")
    changed = body(found["RosterbookCallbacks"], "RosterbookSheetChanged")
    assert 'If Sh.Name <> "Settings" And Sh.Name <> "Lists" Then Exit Sub' in changed
    assert "If Not RosterbookIsBook(Sh.Parent) Then Exit Sub" in changed
    assert "ws.UsedRange.Dirty" in changed and "Application.Calculate" in changed
    for event in ("App_WorkbookActivate", "App_WorkbookDeactivate", "App_NewWorkbook"):
        assert "RosterbookRefreshRibbon" in body(found["ThisWorkbook"], event)


def test_udf_wrappers_cover_every_udf_with_optional_and_hidden_arguments(sources: dict[str, str]) -> None:
    module = sources["RosterbookUDFs"]
    assert module.startswith('Attribute VB_Name = "RosterbookUDFs"\r\n')
    names = [f.__name__ for f in udfs.FUNCTIONS]
    assert names == ["ROSTERBOOK_CHECK", "ROSTERBOOK_CHECK_TABLE", "ROSTERBOOK_STATUS", "ROSTERBOOK_LIST", "ROSTERBOOK_ESCAPE"]
    for name in names:
        assert module.count(f"Function {name}(") == 1
        wrapper = body(module, name)
        # Excel for Mac cannot run xlwings functions: a sentence, not #VALUE!.
        assert wrapper.index("#If Mac Then") < wrapper.index(build._vba_string(build.MAC_MESSAGE)) < wrapper.index("XLPy.CallUDF")
    assert "Function ROSTERBOOK_CHECK(row, Optional headers, Optional dialect)\r\n" in module
    assert (
        'ROSTERBOOK_CHECK = XLPy.CallUDF("addin.udfs", "ROSTERBOOK_CHECK", Array(row, headers, dialect, Nothing, RosterbookPlace(row)), '
        "ActiveWorkbook, Application.Caller)"
    ) in module
    assert "Array(table, dialect, Nothing, RosterbookPlace(table))" in module
    assert "Function ROSTERBOOK_LIST(value, column, Optional dialect)\r\n" in module
    assert "Array(item, separator), ActiveWorkbook" in module  # no caller parameter: nothing passed for it
    place = body(module, "RosterbookPlace")
    assert 'arg.Row & "," & arg.Column & "," & arg.Rows.Count & "," & arg.Columns.Count & "," & arg.Worksheet.Name' in place
    assert place.index("If IsObject(arg) Then") < place.index("If TypeOf arg Is Range Then")


def test_place_of_reads_what_rosterbook_place_writes() -> None:
    from addin.sheet import Place, place_of

    assert place_of("2,3,1,6,Users") == Place("Users", 2, 3, 1, 6)
    assert place_of("1,1,301,22,Sheet, with comma") == Place("Sheet, with comma", 1, 1, 301, 22)
    assert place_of("") is None and place_of(None) is None and place_of("a,b,c,d,Users") is None


def test_new_workbook_opens_each_dialects_template(xlam: Path) -> None:
    from rosterbook.addin_install import template_names
    from rosterbook.core.dialects import dialect_names, load_dialect

    with zipfile.ZipFile(xlam) as zf:
        root = ET.fromstring(zf.read("customUI/customUI.xml"))
    menu = next(el for el in root.iter(f"{CUI}menu") if el.get("id") == "rosterbookNew")
    items = list(menu)
    assert sorted(b.get("tag") for b in items) == sorted(f"new:{n}" for n in dialect_names())
    assert {b.get("tag"): b.get("label") for b in items} == {f"new:{n}": load_dialect(n).title for n in dialect_names()}
    assert {b.get("onAction") for b in items} == {"RosterbookNewWorkbook"}
    new = body(vba_modules(xlam)["RosterbookCallbacks"], "RosterbookNewWorkbook")
    assert 'GetConfig("ROSTERBOOK_TEMPLATES")' in new and "Workbooks.Add Template:=path" in new
    # The VBA names the files as `addin install` writes them.
    assert template_names()["scim"] == "UserTemplate.xlsx" and 'fileName = "UserTemplate.xlsx"' in new
    assert all(n == f"UserTemplate-{d}.xlsx" for d, n in template_names().items() if d != "scim")
    assert 'fileName = "UserTemplate-" & dialect & ".xlsx"' in new


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
        assert all(child.tag in (f"{CUI}button", f"{CUI}menu") for child in group)
    actions = [b for b in root.iter(f"{CUI}button") if b.get("onAction") == build.CALLBACK]
    assert [b.get("label") for b in actions] == ["Export", "Check", "Add check column", "Preview", "Sync", "Revert selected rows", "Undo last sync", "Settings", "Sign in"]
    assert [b.get("tag") for b in actions] == list(ribbon.ACTIONS)
    assert all(b.get("getEnabled") == "RosterbookEnabled" for b in actions)
    assert {b.get("onAction") for b in root.iter(f"{CUI}button")} == {build.CALLBACK, "RosterbookNewWorkbook"}


def test_build_script_writes_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "rosterbook.xlam"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_addin.py"), str(target)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    assert set(vba_modules(target)) == {"ThisWorkbook", "Sheet1", "xlwings", "RosterbookCallbacks", "RosterbookUDFs"}
    assert build.read_versions(target) == {"rosterbook version": __version__, "xlwings version": build.XLWINGS_VERSION}


# --- LibreOffice ------------------------------------------------------------------------------------------


def test_libreoffice_opens_the_addin_and_keeps_its_vba(xlam: Path, sources: dict[str, str], tmp_path: Path) -> None:
    soffice = libreoffice_soffice()
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
    assert build.this_workbook_source().rstrip("\r\n") in again["ThisWorkbook"]
    with zipfile.ZipFile(converted) as zf:
        assert b"RosterbookRibbon" in zf.read("customUI/customUI.xml")
