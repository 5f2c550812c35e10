"""Build ``rosterbook.xlam`` on any OS (no Excel needed): ribbon, xlwings VBA module, UDF wrappers.

The add-in is an OOXML zip: a one-sheet workbook with the add-in content type, ``xl/vbaProject.bin``
(written by ``addin.ovba``) and ``customUI/customUI.xml`` (the ribbon tab). Its VBA project holds

- ``xlwings``: the VBA module of the *installed* xlwings (``xlwings_custom_addin.bas``, which must be
  the pinned version, since it names the exact DLL), patched so that settings come only from the
  user-level conf file that ``rosterbook addin install`` writes (see ``_PATCHES``);
- ``RosterbookCallbacks``: the one ribbon callback (``addin/vba/RosterbookCallbacks.bas``);
- ``RosterbookUDFs``: VBA wrappers for the functions in ``addin/udfs.py``, generated here from the
  xlwings decorator metadata, so users need no "Import Functions" step.

The xlwings module is BSD-licensed code of the xlwings project: it is read from the installed
package at build time, never committed here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from addin.ovba import crlf, vba_project
from rosterbook.errors import UsageError

XLWINGS_VERSION = "0.37.8"
"""The pinned xlwings version; its VBA module names the matching DLL (``xlwings64-0.37.8.dll``)."""
PROJECT_NAME = "rosterbook"
"""xlwings' PROJECT_NAME: names the user conf file (``%USERPROFILE%\\.rosterbook\\rosterbook.conf``)."""
UDF_MODULE = "addin.udfs"
"""The Python module the UDF wrappers call (imported by xlwings' COM server)."""
CALLBACK = "RosterbookRibbon"
"""The VBA callback every ribbon button shares."""

_HERE = Path(__file__).parent
CUSTOM_UI = _HERE / "customUI.xml"
CALLBACKS_BAS = _HERE / "vba" / "RosterbookCallbacks.bas"
THIS_WORKBOOK = _HERE / "vba" / "ThisWorkbook.cls"

# --- the xlwings module, patched ----------------------------------------------------------------

_GETCONFIG_USER_ONLY = """Function GetConfig(configKey As String, Optional default As String = "", Optional source As String = "") As Variant
    ' rosterbook: settings are read ONLY from the user-level conf file written by
    ' `rosterbook addin install` (GetConfigFilePath). A "rosterbook.conf" sheet in an opened
    ' workbook or a rosterbook.conf file beside it is never read, so no workbook can point the
    ' add-in at another interpreter, PYTHONPATH or conda environment.
    Dim configValue As String

    If FileExists(GetConfigFilePath()) = True Then
        If GetConfigFromFile(GetConfigFilePath(), configKey, configValue) Then
            GetConfig = configValue
            GetConfig = ExpandEnvironmentStrings(GetConfig)
            Exit Function
        End If
    End If

    GetConfig = default
    GetConfig = ExpandEnvironmentStrings(GetConfig)
End Function
"""

_NO_EMBEDDED_CODE = """    ' rosterbook: embedded code (sheets named *.py) is an xlwings PRO feature that rosterbook
    ' does not use; a workbook's sheet names never change what runs.
    uses_embedded_code = False
"""


def _replace_once(old: str, new: str) -> Callable[[str], str]:
    def patch(text: str) -> str:
        if text.count(old) != 1:
            raise UsageError(f"xlwings VBA module: expected exactly one {old[:60]!r}; is xlwings {XLWINGS_VERSION} installed?")
        return text.replace(old, new)

    return patch


def _replace_all(old: str, new: str, count: int) -> Callable[[str], str]:
    def patch(text: str) -> str:
        if text.count(old) != count:
            raise UsageError(f"xlwings VBA module: expected {count} x {old[:60]!r}; is xlwings {XLWINGS_VERSION} installed?")
        return text.replace(old, new)

    return patch


def _replace_block(start: str, end: str, new: str) -> Callable[[str], str]:
    """Replace from the line starting with ``start`` through the first ``end`` line after it."""

    def patch(text: str) -> str:
        pattern = re.compile(rf"^{re.escape(start)}.*?^{re.escape(end)}\n", re.MULTILINE | re.DOTALL)
        found = pattern.findall(text)
        if len(found) != 1:
            raise UsageError(f"xlwings VBA module: expected one block {start!r}; is xlwings {XLWINGS_VERSION} installed?")
        return pattern.sub(lambda _: new, text)

    return patch


_PATCHES: tuple[Callable[[str], str], ...] = (
    _replace_once('Public Const PROJECT_NAME As String = "myaddin"', f'Public Const PROJECT_NAME As String = "{PROJECT_NAME}"'),
    # Never read a conf sheet (active workbook or add-in) nor a conf file beside the workbook.
    _replace_block("Function GetConfig(configKey As String", "End Function", _GETCONFIG_USER_ONLY),
    _replace_block('#If App = "Microsoft Excel" Then\nFunction GetConfigFromSheet', "#End If", ""),
    _replace_block("Function GetDirectoryConfigFilePath() As String", "End Function", ""),
    # A workbook's folder is not put on sys.path (a planted addin/ribbon.py there would shadow ours).
    _replace_all('GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "true")', 'GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "false")', 2),
    _replace_block("    uses_embedded_code = False\n    For i = 1 To 2", "    Next i", _NO_EMBEDDED_CODE),
)


def xlwings_vba_dir() -> Path:
    """Folder of the installed xlwings package (found without importing it)."""
    spec = importlib.util.find_spec("xlwings")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("xlwings is not installed; run ./rb (it installs the pinned dependencies).")
    return Path(next(iter(spec.submodule_search_locations)))


def xlwings_module_source() -> str:
    """The installed xlwings add-in VBA module, patched for rosterbook (see ``_PATCHES``)."""
    installed = metadata.version("xlwings")
    if installed != XLWINGS_VERSION:
        raise UsageError(f"xlwings {installed} is installed but the add-in is built for {XLWINGS_VERSION}: run ./rb to install the pinned version.")
    raw = (xlwings_vba_dir() / "xlwings_custom_addin.bas").read_bytes().decode("cp1252")
    text = raw.replace("\r\n", "\n")
    if f"'Version: {XLWINGS_VERSION}\n" not in text:
        raise UsageError(f"xlwings_custom_addin.bas is not version {XLWINGS_VERSION}.")
    for patch in _PATCHES:
        text = patch(text)
    return crlf(text)


# --- the ribbon callback and the UDF wrappers -------------------------------------------------------


def callbacks_module_source() -> str:
    """The ribbon callback module (``addin/vba/RosterbookCallbacks.bas``)."""
    return crlf(CALLBACKS_BAS.read_text(encoding="utf-8"))


def udf_module_source(module_name: str = UDF_MODULE) -> str:
    """VBA wrappers for every function in ``module_name``'s ``FUNCTIONS``, shaped as
    ``xlwings.udfs.generate_vba_wrapper`` writes them for an add-in (``ActiveWorkbook``), plus
    ``RosterbookRegisterFunctions`` (their ``Application.MacroOptions``) and ``RosterbookPlace``.

    xlwings' generator needs Excel (and its decorators are no-ops off Windows), so the wrapper is
    derived here from each function's signature and the help ``addin.udfs`` records: parameters
    with a default are ``Optional``, one with a VBA expression (``vba=``) is filled by the wrapper
    instead of the formula, and the reserved ``caller`` parameter is passed as ``Nothing``
    (xlwings' ``call_udf`` replaces it with the calling range).
    """
    module = importlib.import_module(module_name)
    lines = [
        'Attribute VB_Name = "RosterbookUDFs"',
        "' Generated by scripts/build_addin.py from addin/udfs.py (xlwings UDF wrappers): do not edit.",
        "#Const App = \"Microsoft Excel\" 'Adjust when using outside of Excel",
        "",
    ]
    for func in module.FUNCTIONS:
        lines += _udf_wrapper(module_name, func, module)
    lines += _register_source(module)
    lines += _PLACE_FUNCTION.splitlines()
    return crlf("\n".join(lines))


MAC_MESSAGE = "rosterbook: the cell functions run in Excel for Windows only (xlwings runs custom functions there); use the Check button."
"""What a cell function shows in Excel for Mac, where xlwings cannot run it."""

_PLACE_FUNCTION = """' Where a range argument lies ("row,column,rows,columns,sheet"; "" for values): lets a function
' read the headers of the same columns and name the cells as the sheet does (addin.sheet.place_of).
Public Function RosterbookPlace(arg As Variant) As String
    If IsObject(arg) Then
        If TypeOf arg Is Range Then
            RosterbookPlace = arg.Row & "," & arg.Column & "," & arg.Rows.Count & "," & arg.Columns.Count & "," & arg.Worksheet.Name
        End If
    End If
End Function
"""


def _vba_string(text: str) -> str:
    """A VBA string literal (at most 255 characters, what MacroOptions keeps)."""
    if any(ord(ch) > 126 or ord(ch) < 32 for ch in text):
        raise UsageError(f"function help must be plain ASCII for the VBA module: {text!r}")
    return '"' + text[:255].replace('"', '""') + '"'


def _udf_wrapper(module_name: str, func: Callable[..., Any], module: Any) -> list[str]:
    name = func.__name__
    params: list[str] = []
    call_args: list[str] = []
    hidden = {a.name: a.vba for a in module.arguments(func) if a.vba}
    for param in inspect.signature(func).parameters.values():
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            raise UsageError(f"UDF {name}: only plain positional parameters are supported, not {param.name!r}")
        if param.name == "caller":
            call_args.append("Nothing")
            continue
        if param.name in hidden:
            call_args.append(hidden[param.name])
            continue
        call_args.append(param.name)
        params.append(("Optional " if param.default is not param.empty else "") + param.name)
    array = "Array(" + ", ".join(call_args) + ")"
    return [
        f"Function {name}({', '.join(params)})",
        "    #If Mac Then",
        f"        {name} = {_vba_string(MAC_MESSAGE)}",
        "        Exit Function",
        "    #End If",
        '    #If App = "Microsoft Excel" Then',
        "        If TypeOf Application.Caller Is Range Then On Error GoTo failed",
        f'        {name} = XLPy.CallUDF("{module_name}", "{name}", {array}, ActiveWorkbook, Application.Caller)',
        "        Exit Function",
        "    #Else",
        f'        {name} = XLPy.CallUDF("{module_name}", "{name}", {array})',
        "        Exit Function",
        "    #End If",
        "failed:",
        f"    {name} = Err.Description",
        "End Function",
        "",
    ]


def _register_source(module: Any) -> list[str]:
    """``RosterbookRegisterFunctions``: one ``Application.MacroOptions`` per function, as xlwings' UDF import
    registers them (description, category, a description per argument the formula takes)."""
    lines = [
        "' Insert Function's help for every function, from the doc= strings of addin/udfs.py. Called when",
        "' the add-in loads (ThisWorkbook); an Excel without ArgumentDescriptions still gets the rest.",
        "Public Sub RosterbookRegisterFunctions()",
        "    Dim book As String",
        "    On Error Resume Next",
        "    book = \"'\" & ThisWorkbook.Name & \"'!\"",
    ]
    for func in module.FUNCTIONS:
        shown = [a for a in module.arguments(func) if not a.vba]
        if not all(a.doc for a in shown):
            raise UsageError(f"UDF {func.__name__}: every argument needs doc= help for Insert Function")
        described = module.description(func)
        if not described:
            raise UsageError(f"UDF {func.__name__}: a docstring is its Insert Function description")
        docs = ", _\n            ".join(_vba_string(a.doc) for a in shown)
        lines += [
            f'    Application.MacroOptions Macro:=book & "{func.__name__}", _',
            f"        Description:={_vba_string(described)}, _",
            f"        Category:={_vba_string(module.CATEGORY)}, _",
            f"        ArgumentDescriptions:=Array({docs})",
            "    If Err.Number <> 0 Then",
            "        Err.Clear",
            f'        Application.MacroOptions Macro:=book & "{func.__name__}", Description:={_vba_string(described)}, Category:={_vba_string(module.CATEGORY)}',
            "        Err.Clear",
            "    End If",
        ]
    lines += [
        "    ThisWorkbook.Saved = True  ' registering marks the add-in changed; nothing to save",
        "End Sub",
        "",
    ]
    return lines


def this_workbook_source() -> str:
    """The add-in's ``ThisWorkbook`` code (``addin/vba/ThisWorkbook.cls``): load-time registration and events."""
    return crlf(THIS_WORKBOOK.read_text(encoding="utf-8"))


def custom_ui_xml() -> str:
    """The ribbon tab (``addin/customUI.xml``)."""
    return CUSTOM_UI.read_text(encoding="utf-8")


def modules() -> dict[str, str]:
    """Every standard module of the add-in's VBA project: name -> source (CRLF)."""
    return {
        "xlwings": xlwings_module_source(),
        "RosterbookCallbacks": callbacks_module_source(),
        "RosterbookUDFs": udf_module_source(),
    }


# --- the .xlam package ----------------------------------------------------------------------------

_ADDIN_TYPE = "application/vnd.ms-excel.addin.macroEnabled.main+xml"
_SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_VBA_TYPE = "application/vnd.ms-office.vbaProject"
_VBA_REL = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"
_UI_REL = "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # zip entry times (openpyxl stamps docProps itself)


def _workbook_bytes() -> bytes:
    """A one-sheet workbook (openpyxl) whose VBA code names match the project's document modules."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "rosterbook"
    ws["A1"] = "rosterbook add-in: use the rosterbook tab of the ribbon."
    ws.sheet_properties.codeName = "Sheet1"
    wb.code_name = "ThisWorkbook"
    wb.properties.creator = "rosterbook"
    from openpyxl.packaging.custom import StringProperty

    from rosterbook import __version__

    # What `rosterbook addin status` compares with the installed rosterbook and xlwings.
    for key, value in versions(__version__).items():
        wb.custom_doc_props.append(StringProperty(name=key, value=value))
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


VERSION_PROPERTIES = ("rosterbook version", "xlwings version")
"""Custom document properties of the add-in naming what it was built from."""


def versions(rosterbook_version: str) -> dict[str, str]:
    """The add-in's version properties (``VERSION_PROPERTIES``)."""
    return dict(zip(VERSION_PROPERTIES, (rosterbook_version, XLWINGS_VERSION), strict=True))


def read_versions(path: Path) -> dict[str, str]:
    """The version properties of a built add-in (empty when it has none: an add-in older than them)."""
    import xml.etree.ElementTree as ET

    try:
        with zipfile.ZipFile(path) as zf:
            xml = zf.read("docProps/custom.xml")
    except (KeyError, OSError, zipfile.BadZipFile):
        return {}
    out: dict[str, str] = {}
    for prop in ET.fromstring(xml):
        name = prop.get("name")
        value = next(iter(prop), None)
        if name in VERSION_PROPERTIES and value is not None and value.text:
            out[name] = value.text
    return out


def _add_relationship(rels: str, rel_id: str, rel_type: str, target: str) -> str:
    entry = f'<Relationship Id="{rel_id}" Type="{rel_type}" Target="{target}"/>'
    return rels.replace("</Relationships>", entry + "</Relationships>")


def _package(parts: dict[str, bytes], vba_bin: bytes, ui: str) -> dict[str, bytes]:
    out = dict(parts)
    types = out["[Content_Types].xml"].decode("utf-8")
    if _SHEET_TYPE not in types:
        raise UsageError("unexpected workbook content type from openpyxl")
    types = types.replace(_SHEET_TYPE, _ADDIN_TYPE)
    types = types.replace("</Types>", f'<Override PartName="/xl/vbaProject.bin" ContentType="{_VBA_TYPE}"/></Types>')
    out["[Content_Types].xml"] = types.encode("utf-8")
    workbook_rels = out["xl/_rels/workbook.xml.rels"].decode("utf-8")
    out["xl/_rels/workbook.xml.rels"] = _add_relationship(workbook_rels, "rIdVBA", _VBA_REL, "vbaProject.bin").encode("utf-8")
    root_rels = out["_rels/.rels"].decode("utf-8")
    out["_rels/.rels"] = _add_relationship(root_rels, "rIdUI", _UI_REL, "customUI/customUI.xml").encode("utf-8")
    out["xl/vbaProject.bin"] = vba_bin
    out["customUI/customUI.xml"] = ui.encode("utf-8")
    return out


def _write_zip(path: Path, parts: Iterable[tuple[str, bytes]]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)


def build_xlam(path: Path) -> Path:
    """Write ``rosterbook.xlam`` to ``path`` (a file path or a folder) and return the file's path."""
    path = Path(path)
    if path.is_dir():
        path = path / "rosterbook.xlam"
    vba_bin = vba_project(modules(), documents={"ThisWorkbook": this_workbook_source()})
    with zipfile.ZipFile(io.BytesIO(_workbook_bytes())) as zf:
        parts = {name: zf.read(name) for name in zf.namelist()}
    packaged = _package(parts, vba_bin, custom_ui_xml())
    # [Content_Types].xml first, as Office writes it.
    order = sorted(packaged, key=lambda name: (name != "[Content_Types].xml", name))
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_zip(path, ((name, packaged[name]) for name in order))
    return path
