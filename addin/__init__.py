"""The Excel add-in: ribbon dispatch, cell functions (UDFs), the xlwings sheet adapter and the .xlam build."""
