"""The pure core: plain data in, values out. No xlwings, requests, openpyxl or CLI library here."""
