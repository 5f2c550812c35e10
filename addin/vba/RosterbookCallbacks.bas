Attribute VB_Name = "RosterbookCallbacks"
' The rosterbook ribbon: every button calls this one callback, which passes the button's tag
' to addin.ribbon.dispatch. RunPython takes one string and no arguments, so the tag travels
' inside the command. Tags come from this add-in's own customUI.xml, never from a workbook.
Option Explicit

Public Sub RosterbookRibbon(control As IRibbonControl)
    RunPython "import addin.ribbon as r; r.dispatch('" & control.Tag & "')"
End Sub
