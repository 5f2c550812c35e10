Attribute VB_Name = "RosterbookCallbacks"
' The rosterbook ribbon. Every action button calls RosterbookRibbon, which passes the button's tag
' to addin.ribbon.dispatch. RunPython takes one string and no arguments, so the tag travels
' inside the command. Tags come from this add-in's own customUI.xml, never from a workbook.
'
' RosterbookGuard runs first: xlwings' RunPython reads ActiveWorkbook.FullName, which fails with
' error 91 (and Excel's End/Debug dialog) when no workbook is open, so a button says what is
' missing instead. RosterbookEnabled greys out the buttons the same guard would refuse; the
' add-in's ThisWorkbook module asks the ribbon to look again when another workbook comes to the
' front, and recalculates a rosterbook workbook's formulas when its Settings or Lists change.
Option Explicit

Private RosterbookUI As IRibbonUI

Public Sub RosterbookRibbonLoaded(ribbon As IRibbonUI)
    Set RosterbookUI = ribbon
End Sub

Public Sub RosterbookRefreshRibbon()
    ' The ribbon asks RosterbookEnabled again for every button (it is lost after a VBA reset).
    If Not RosterbookUI Is Nothing Then RosterbookUI.Invalidate
End Sub

Public Sub RosterbookEnabled(control As IRibbonControl, ByRef enabled)
    enabled = (RosterbookGuard(control.Tag) = "")
End Sub

Public Sub RosterbookRibbon(control As IRibbonControl)
    Dim problem As String
    problem = RosterbookGuard(control.Tag)
    If problem <> "" Then
        MsgBox problem, vbInformation, "rosterbook"
        Exit Sub
    End If
    RunPython "import addin.ribbon as r; r.dispatch('" & control.Tag & "')"
    RosterbookRefreshRibbon
End Sub

' Why the button tagged `tag` cannot run on the active workbook now; "" when it can.
Public Function RosterbookGuard(tag As String) As String
    Dim wb As Workbook
    If tag = "new" Or Left$(tag, 4) = "new:" Then Exit Function
    On Error Resume Next
    Set wb = ActiveWorkbook
    On Error GoTo 0
    If wb Is Nothing Then
        RosterbookGuard = "Open a workbook first (File > New or Open; a workbook in Protected View needs Enable Editing), " & _
            "or start one from rosterbook > New workbook."
        Exit Function
    End If
    If tag = "export" Then Exit Function
    If Not RosterbookIsBook(wb) Then
        RosterbookGuard = "'" & wb.Name & "' is not a rosterbook workbook: it has no rosterbook Settings sheet. " & _
            "Press Export to fill it with the platform's users, or start from rosterbook > New workbook."
        Exit Function
    End If
    If tag = "checkcolumn" Then
        #If Mac Then
            RosterbookGuard = "The Check column uses rosterbook's cell functions, which run in Excel for Windows only. Use Check instead."
        #End If
    End If
End Function

' A rosterbook workbook has a Settings sheet whose A1 says "Setting" (rosterbook.workbook.SETTINGS_HEADERS).
Public Function RosterbookIsBook(wb As Object) As Boolean
    Dim ws As Object
    On Error Resume Next
    Set ws = wb.Worksheets("Settings")
    If ws Is Nothing Then Exit Function
    RosterbookIsBook = (CStr(ws.Range("A1").Value) = "Setting")
End Function

' "New workbook": a fresh, unsaved copy of the platform's template (Workbooks.Add with a template),
' from the templates folder `rosterbook addin install` fills (ROSTERBOOK_TEMPLATES in the conf file).
Public Sub RosterbookNewWorkbook(control As IRibbonControl)
    Dim dialect As String, folder As String, fileName As String, path As String
    dialect = Mid$(control.Tag, 5)
    folder = GetConfig("ROSTERBOOK_TEMPLATES")
    If folder = "" Then
        MsgBox "The rosterbook templates are not installed. In a terminal, in the rosterbook folder, run: rosterbook addin install", vbExclamation, "rosterbook"
        Exit Sub
    End If
    If dialect = "scim" Then
        fileName = "UserTemplate.xlsx"
    Else
        fileName = "UserTemplate-" & dialect & ".xlsx"
    End If
    path = folder & Application.PathSeparator & fileName
    If Not FileExists(path) Then
        MsgBox "The template " & path & " is missing. In a terminal, in the rosterbook folder, run: rosterbook addin install", vbExclamation, "rosterbook"
        Exit Sub
    End If
    On Error GoTo failed
    Workbooks.Add Template:=path
    RosterbookRefreshRibbon
    Exit Sub
failed:
    MsgBox "Excel could not open the template " & path & ": " & Err.Description, vbExclamation, "rosterbook"
End Sub

' Called by ThisWorkbook for every cell change in any workbook: keep it cheap.
Public Sub RosterbookSheetChanged(ByVal Sh As Object)
    Dim ws As Object
    If Sh.Name <> "Settings" And Sh.Name <> "Lists" Then Exit Sub
    If Not RosterbookIsBook(Sh.Parent) Then Exit Sub
    ' The dialect (Settings) and the platform's values (Lists) decide what the cell functions say, but
    ' no formula refers to them: mark the workbook's formulas dirty so Excel recalculates them.
    On Error Resume Next
    For Each ws In Sh.Parent.Worksheets
        ws.UsedRange.Dirty
    Next ws
    If Application.Calculation = xlCalculationAutomatic Then Application.Calculate
    RosterbookRefreshRibbon
End Sub
