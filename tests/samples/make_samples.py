"""Writes the sample exports in this folder: clean exports, copies with planted problems, their
expectations (``*.expected.json``) and encoding/delimiter variants. Run it after editing the data:
``.venv/bin/python tests/samples/make_samples.py``. The people are invented."""
import copy
import csv
import io
import json
from pathlib import Path

OUT = Path(__file__).resolve().parent
OUT.mkdir(exist_ok=True)

def write(name, headers, rows, *, encoding="utf-8", delimiter=",", newline="\r\n"):
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    w.writerow(headers)
    w.writerows(rows)
    (OUT / name).write_bytes(buf.getvalue().encode(encoding))

def expect(name, dialect, problems, note):
    data = {"file": name, "dialect": dialect, "note": note,
            "problems": [{"cell": c, "code": code, "severity": sev, **({"fix": fix} if fix is not None else {})} for c, code, sev, fix in problems]}
    (OUT / name.replace(".csv", ".expected.json")).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

# ---------------- Progression -------------------------------------------------------------
P_H = ["First Name", "Last Name", "email", "position", "team", "manager", "account_active"]
P = [
 ["Amara", "Okafor", "amara.okafor@example.com", "Head of Engineering", "Engineering", "", "Active"],
 ["Tomasz", "Nowak", "tomasz.nowak@example.com", "Senior Engineer", "Engineering", "amara.okafor@example.com", "Active"],
 ["Zoë", "Lefèvre", "zoe.lefevre@example.com", "Engineer II", "Engineering", "tomasz.nowak@example.com", "Active"],
 ["Siobhán", "O'Neill", "siobhan.oneill@example.com", "Product Designer", "Design", "amara.okafor@example.com", "Active"],
 ["Rahul", "Menon", "rahul.menon@example.com", "Engineer I", "Engineering", "tomasz.nowak@example.com", "Pending"],
 ["Grace", "Adeyemi-Brown", "grace.adeyemi-brown@example.com", "People Partner", "People", "", "Active"],
 ["Lukas", "Schmidt", "lukas.schmidt@example.com", "", "", "grace.adeyemi-brown@example.com", "Pending"],
 ["Mei", "Tanaka", "mei.tanaka@example.com", "Data Analyst", "Data", "amara.okafor@example.com", "Active"],
 ["José", "García", "jose.garcia@example.com", "Engineer II", "Engineering", "tomasz.nowak@example.com", "Archived"],
 ["Hannah", "Kowalczyk", "hannah.kowalczyk@example.com", "Senior Product Designer", "Design", "siobhan.oneill@example.com", "Active"],
 ["Oluwaseun", "Bello", "seun.bello@example.com", "Engineer I", "Platform", "tomasz.nowak@example.com", "Active"],
 ["Fatima", "Zahra", "fatima.zahra@example.com", "", "People", "grace.adeyemi-brown@example.com", "Active"],
 ["Ben", "Carter", "ben.carter@example.com", "Engineering Manager", "Platform", "amara.okafor@example.com", "Active"],
 ["Ingrid", "Johansson", "ingrid.johansson@example.com", "Data Engineer", "Data", "mei.tanaka@example.com", "Pending"],
 ["Kwame", "Mensah", "kwame.mensah@example.com", "Engineer II", "Platform", "ben.carter@example.com", "Active"],
 ["Chloé", "Dubois", "chloe.dubois@example.com", "", "", "", "Archived"],
 ["Arjun", "Patel", "arjun.patel+hr@example.com", "People Partner", "People", "grace.adeyemi-brown@example.com", "Active"],
 ["Nora", "Fitzgerald", "nora.fitzgerald@example.com", "Staff Engineer", "Engineering", "amara.okafor@example.com", "Active"],
]
write("progression_export.csv", P_H, P)
# Excel in a ';' locale saving "CSV UTF-8": BOM, ';' delimiter, CRLF
write("progression_export_excel_semicolon.csv", P_H, P, encoding="utf-8-sig", delimiter=";")
pp = copy.deepcopy(P)
pp[2][6] = "actve"                               # row 4  G4
pp[4][6] = "active"                              # row 6  G6
pp[6][2] = "lukas.schmidt@example"              # row 8  C8
pp[8][2] = "Amara.Okafor@example.com"           # row 10 C10 duplicate of C2 (case-insensitive)
pp[10][1] = ""                                   # row 12 B12 required
pp[11][3] = "People Partner"                     # row 13 D13 position without team
pp[11][4] = ""
pp[12][5] = "Amara Okafor"                       # row 14 F14 manager not an email
pp[13][6] = ""                                   # row 15 G15 blank status: only ok for existing users
pp[14][0] = '=PROPER("kwame")'                   # row 16 A16 formula text
pp[15][6] = "Archived."                          # row 17 G17 symbol added
pp.append(["Elena", "Rossi", " elena.rossi@example.com ", "Engineer I", "Platform", "ben.carter@example.com", "Pending"])  # row 20: spaces are trimmed: clean
pp.append(["Yusuf", "Demir", "yusuf.demir@example.com", "", "", "", ""])   # row 21 G21 new-looking user without status
write("progression_planted.csv", P_H, pp)
expect("progression_planted.csv", "progression", [
 ("G4", "unknown-status", "error", "Active"),
 ("G6", "unknown-status", "error", "Active"),
 ("C8", "invalid-email", "error", None),
 ("C10", "duplicate-key", "error", None),
 ("B12", "required", "error", None),
 ("D13", "requires-column", "error", None),
 ("F14", "invalid-email", "error", None),
 ("G15", "required-if-new", "warning", None),
 ("A16", "formula", "error", None),
 ("G17", "unknown-status", "error", "Archived"),
 ("G21", "required-if-new", "warning", None),
], "Rows 2, 3, 5, 7, 9, 11, 18, 19 and 20 are clean.")

# ---------------- EdApp --------------------------------------------------------------------
E_H = ["Email", "Username", "First Name", "Last Name", "User groups", "Roles", "Password", "External ID", "Job Title", "Department"]
E = [
 ["olivia.hart@example.org", "olivia.hart@example.org", "Olivia", "Hart", "marketing; operations;", "Admin; Learner; Prizing User", "", "000417", "Training Lead", "Operations"],
 ["daniel.kim@example.org", "daniel.kim@example.org", "Daniel", "Kim", "operations", "Learner; Prizing User", "", "000418", "Warehouse Associate", "Operations"],
 ["priya.shah@example.org", "pshah", "Priya", "Shah", "marketing", "Content Author; Learner; Prizing User", "", "000422", "Content Designer", "Marketing"],
 ["marco.bianchi@example.org", "marco.bianchi@example.org", "Marco", "Bianchi", "sales; north region", "Manager Analytics; Learner; Prizing User", "", "000431", "Regional Manager", "Sales"],
 ["aisha.bello@example.org", "aisha.bello@example.org", "Aisha", "Bello", "sales", "Learner; Prizing User", "", "", "Sales Associate", "Sales"],
 ["liam.walsh@example.org", "lwalsh", "Liam", "Walsh", "", "Learner; Prizing User", "", "000440", "", ""],
 ["sofia.martins@example.org", "sofia.martins@example.org", "Sofía", "Martins", "operations; safety committee", "Reviewer; Learner; Prizing User", "", "000452", "Safety Officer", "Operations"],
 ["noah.fischer@example.org", "noah.fischer@example.org", "Noah", "Fischer", "operations", "Learner; Prizing User; Excluded from Analytics", "", "000455", "Contractor", "Operations"],
 ["emma.larsen@example.org", "emma.larsen@example.org", "Emma", "Larsen", "marketing", "Facilitator; Learner; Prizing User", "", "000461", "Brand Manager", "Marketing"],
 ["kenji.watanabe@example.org", "kwatanabe", "Kenji", "Watanabe", "sales; south region", "Learner; Prizing User", "", "000470", "Account Executive", "Sales"],
 ["chidi.eze@example.org", "chidi.eze@example.org", "Chidi", "Eze", "operations", "Learner; Prizing User", "", "000473", "Forklift Operator", "Operations"],
 ["lena.novak@example.org", "lena.novak@example.org", "Lena", "Novák", "marketing; operations", "Admin; Learner; Prizing User", "", "000480", "Head of People", "People"],
 ["omar.haddad@example.org", "", "Omar", "Haddad", "sales", "Learner; Prizing User", "", "000488", "Sales Associate", "Sales"],
 ["ruth.abebe@example.org", "ruth.abebe@example.org", "Ruth", "Abebe", "", "Learner; Prizing User", "", "000491", "Receptionist", "Facilities"],
]
write("edapp_export.csv", E_H, E)
# Excel on Western Windows saving "CSV (Comma delimited)": Windows-1252, CRLF
write("edapp_export_cp1252.csv", E_H, E, encoding="cp1252")
ep = copy.deepcopy(E)
ep[0][5] = "Admin,Learner"                      # row 2 F2 wrong separator (roles are fixed)
ep[1][5] = "Lerner; Prizing User"               # row 3 F3 not a role -> Learner; Prizing User
ep[2][4] = "marketing, operations"              # row 4 E4 comma in groups: warning
ep[3][0] = "marco.bianchi@@example.org"         # row 5 A5 invalid email
ep[4][1] = "pshah"                              # row 6 B6 duplicate username of row 4
ep[5][6] = "Welcome2024!"                       # row 7 G7 sets password: warning
ep[6][7] = "000431"                             # row 8 H8 duplicate External ID of row 5
ep[7][7] = "4.55E+11"                           # row 9 H9 External ID in scientific notation
ep[8][0] = "olivia.hart@example.org"            # row 10 A10 duplicate email of A2 ... and B10 username differs, so key is fine
ep[8][1] = "emma.larsen@example.org"
ep[9][9] = "=VLOOKUP(A11,Depts!A:B,2,FALSE)"    # row 11 J11 formula in a custom field
ep[10][0] = ""                                  # row 12 A12 email required
ep[12][0] = "kwatanabe"                         # row 14: username blank, so key comes from Email, which is not an email
ep.append(["Tariq.Aziz@example.org", "", "Tariq", "Aziz", "sales", "Learner; Prizing User", "", "", "Sales Associate", "Sales"])   # row 16 clean (new learner)
ep.append(["tariq.aziz@example.org", "", "Tariq", "Aziz", "sales", "Learner; Prizing User", "", "", "Sales Associate", "Sales"])   # row 17 A17 same key via Email fallback
write("edapp_planted.csv", E_H, ep)
expect("edapp_planted.csv", "edapp", [
 ("F2", "wrong-separator", "error", "Admin; Learner"),
 ("F3", "not-allowed", "error", "Learner; Prizing User"),
 ("E4", "wrong-separator", "warning", "marketing; operations"),
 ("A5", "invalid-email", "error", None),
 ("B6", "duplicate-key", "error", None),
 ("G7", "sets-password", "warning", None),
 ("H8", "duplicate-value", "error", None),
 ("H9", "mangled-number", "error", None),
 ("A10", "duplicate-value", "error", None),
 ("J11", "formula", "error", None),
 ("A12", "required", "error", None),
 ("A14", "duplicate-key", "error", None),
 ("A14", "invalid-email", "error", None),
 ("A17", "duplicate-key", "error", None),
], "Rows 13, 15 and 16 are clean; Job Title and Department are custom fields.")

# ---------------- Incenteev ------------------------------------------------------------------
I_H = ["First name", "Last name", "Email", "Role(s)", "Permission profile", "Employee ID", "Job title", "Phone number", "Role ID"]
INC = [
 ["Claire", "Moreau", "claire.moreau@example.com", "Sales Director", "Administrator", "00017", "Directrice commerciale", "+33 1 84 88 12 00", "R-100"],
 ["Hugo", "Bernard", "hugo.bernard@example.com", "Sales Manager", "Manager", "00023", "Sales Manager North", "+33 6 12 34 56 78", "R-210"],
 ["Inès", "Lambert", "ines.lambert@example.com", "Sales Rep", "Participant", "00031", "Account Executive", "+33 6 98 76 54 32", "R-310"],
 ["Thomas", "Girard", "thomas.girard@example.com", "Sales Rep", "Participant", "00032", "Account Executive", "06 11 22 33 44", "R-310"],
 ["Léa", "Fontaine", "lea.fontaine@example.com", "Sales Rep; Team Lead", "Participant", "00040", "Senior Account Executive", "", "R-320"],
 ["Karim", "Benali", "karim.benali@example.com", "Sales Manager", "Manager", "00044", "Sales Manager South", "+33 (0)4 91 00 00 00", "R-220"],
 ["Julia", "Weber", "julia.weber@example.com", "Sales Rep", "Participant", "", "Account Executive, DACH", "+49 30 1234567", "R-310"],
 ["Pedro", "Alves", "pedro.alves@example.com", "Sales Ops", "Administrator", "00051", "Sales Operations Analyst", "+351 21 000 0000", "R-400"],
 ["Anna", "Kowalska", "anna.kowalska@example.com", "Sales Rep", "Participant", "00058", "Account Executive", "", "R-310"],
 ["Samuel", "Osei", "samuel.osei@example.com", "Sales Rep", "Participant", "00060", "Inside Sales", "+44 20 7946 0000 ext. 12", "R-300"],
 ["Marie", "Dupont", "marie.dupont@example.com", "Finance Controller", "Viewer", "00062", "Contrôleuse de gestion", "", ""],
]
write("incenteev_users.csv", I_H, INC)
write("incenteev_users_semicolon_cp1252.csv", I_H, INC, encoding="cp1252", delimiter=";", newline="\n")
ip = copy.deepcopy(INC)
ip[0][4] = ""                                   # row 2 E2 permission profile required
ip[1][3] = ""                                   # row 3 D3 role(s) required
ip[2][5] = "3.1E+01"                            # row 4 F4 scientific
ip[3][7] = "call reception"                     # row 5 H5 not a phone
ip[4][2] = "HUGO.BERNARD@example.com"           # row 6 C6 duplicate key of C3
ip[5][5] = "00023"                              # row 7 F7 duplicate Employee ID of F3
ip[6][3] = "Sales Rep, Team Lead"               # row 8 D8 comma in roles: warning
ip[7][0] = ""                                   # row 9 A9 first name required
ip[8][2] = "anna kowalska@example.com"          # row 10 C10 space in email
write("incenteev_planted.csv", I_H, ip)
# A row whose unquoted "VP, Sales" shifted the cells after it: appended by hand (csv.writer would quote it).
with (OUT / "incenteev_planted.csv").open("ab") as f:
    f.write(b"Nadia,Rahman,nadia.rahman@example.com,Sales Director,Manager,00070,VP, Sales,+33 1 23 45 67 89,R-110\r\n")
expect("incenteev_planted.csv", "incenteev", [
 ("E2", "required", "error", None),
 ("D3", "required", "error", None),
 ("F4", "mangled-number", "error", None),
 ("H5", "invalid-phone", "error", None),
 ("C6", "duplicate-key", "error", None),
 ("F7", "duplicate-value", "error", None),
 ("D8", "wrong-separator", "warning", "Sales Rep; Team Lead"),
 ("A9", "required", "error", None),
 ("C10", "invalid-email", "error", "annakowalska@example.com"),
 ("H13", "invalid-phone", "error", None),
 ("J13", "extra-cells", "error", None),
], "Rows 11 and 12 are clean. Row 13's unquoted 'VP, Sales' shifts 'Sales' into Phone number and 'R-110' past the last header.")

# ---------------- Jostle ---------------------------------------------------------------------
J_H = ["Username", "First Name", "Last Name", "Work Email", "Job Title", "Location", "Org", "Manager", "Work Phone", "Employee ID", "Start Date"]
J = [
 ["sarah.lee", "Sarah", "Lee", "sarah.lee@example.net", "Chief Executive Officer", "Main\\|HQ", "Executive", "", "+1 416 555 0100", "000101", "2015-03-02"],
 ["david.cohen", "David", "Cohen", "david.cohen@example.net", "VP Operations", "Main\\|HQ", "Operations", "sarah.lee", "+1 416 555 0101", "000102", "2016-07-18"],
 ["ana.silva", "Ana", "Silva", "ana.silva@example.net", "Operations Coordinator", "Toronto | Remote", "Operations", "david.cohen", "+1 416 555 0142", "000117", "2019-01-07"],
 ["michael.obrien", "Michael", "O'Brien", "michael.obrien@example.net", "Facilities Lead", "Vancouver", "Operations | Facilities", "david.cohen", "", "000123", "2018-11-05"],
 ["priya.nair", "Priya", "Nair", "priya.nair@example.net", "HR Generalist", "Main\\|HQ", "People & Culture", "sarah.lee", "+1 416 555 0150", "000130", "2020-02-24"],
 ["jean-luc.roy", "Jean-Luc", "Roy", "jean-luc.roy@example.net", "Agent de service", "Montréal", "Operations", "michael.obrien", "+1 514 555 0199", "000131", "2021-09-13"],
 ["emily.wong", "Emily", "Wong", "emily.wong@example.net", "Communications Manager\nInternal Comms", "Toronto", "Communications", "sarah.lee", "", "000140", "2017-04-03"],
 ["tom.harris", "Tom", "Harris", "tom.harris@example.net", "IT Support", "Remote", "IT", "david.cohen", "+1 604 555 0177", "000152", "2022-06-01"],
 ["fatou.diallo", "Fatou", "Diallo", "fatou.diallo@example.net", "Payroll Specialist", "Main\\|HQ", "People & Culture | Finance", "priya.nair", "", "000158", "2023-01-16"],
 ["georg.muller", "Georg", "Müller", "georg.muller@example.net", "Warehouse Lead", "Calgary", "Operations", "david.cohen", "+1 403 555 0123", "000163", "2014-08-25"],
 ["nina.petrova", "Nina", "Petrova", "nina.petrova@example.net", "Designer", "Remote", "Communications", "emily.wong", "", "", ""],
]
write("jostle_extract.csv", J_H, J)
write("jostle_extract_bom_lf.csv", J_H, J, encoding="utf-8-sig", newline="\n")
jp = copy.deepcopy(J)
jp[0][5] = "Main|HQ"                            # row 2 F2 unescaped '|': warning, fix Main\|HQ
jp[1][5] = "Head Office\\"                      # row 3 F3 trailing escape
jp[2][6] = "Operations; Facilities"             # row 4 G4 ';' in a '|' list: warning
jp[3][10] = "03/04/2021"                        # row 5 K5 ambiguous date
jp[4][10] = "24/02/2020"                        # row 6 K6 non-ISO date, fix 2020-02-24
jp[5][0] = "Sarah.Lee"                          # row 7 A7 duplicate username (case-insensitive) of A2
jp[6][0] = ""                                   # row 8 A8 username required
jp[7][3] = "tom.harris(at)example.net"          # row 9 D9 invalid email
jp[8][9] = "1.58E+05"                           # row 10 J10 scientific
jp[9][8] = "ask Georg"                          # row 11 I11 not a phone
jp.append(["lucas.martin", "", "Martin", "lucas.martin@example.net", "Analyst", "Remote", "Finance", "fatou.diallo", "", "000170", "2024-05-06"])  # row 13 B13 first name (new users)
write("jostle_planted.csv", J_H, jp)
expect("jostle_planted.csv", "jostle", [
 ("F2", "unescaped-separator", "warning", "Main\\|HQ"),
 ("F3", "escape-at-end", "error", "Head Office"),
 ("G4", "wrong-separator", "warning", "Operations|Facilities"),
 ("K5", "ambiguous-date", "error", None),
 ("K6", "invalid-date", "error", "2020-02-24"),
 ("A7", "duplicate-key", "error", None),
 ("A8", "required", "error", None),
 ("D9", "invalid-email", "error", None),
 ("J10", "mangled-number", "error", None),
 ("I11", "invalid-phone", "error", None),
 ("B13", "required-if-new", "warning", None),
], "Row 12 is clean; 'Main\\|HQ' is one location, 'Toronto | Remote' two; row 8 (Emily Wong in the clean file) has a line break inside a quoted cell.")
# ---------------- the platforms' own spellings (issue 15) ----------------------------------
# Progression in a ';' locale, saved with a BOM, its headers spelled and ordered differently: the upload file must mirror it.
PR_H = ["email", "first_name", "last_name", "account_active", "team", "position", "manager"]
PR = [
 ["amara.okafor@example.com", "Amara", "Okafor", "Active", "Engineering", "Head of Engineering", ""],
 ["tomasz.nowak@example.com", "Tomasz", "Nowak", "Active", "Engineering", "Senior Engineer", "amara.okafor@example.com"],
 ["zoe.lefevre@example.com", "Zoë", "Lefèvre", "Active", "Engineering", "Engineer II", "tomasz.nowak@example.com"],
 ["rahul.menon@example.com", "Rahul", "Menon", "Pending", "Engineering", "Engineer I", "tomasz.nowak@example.com"],
 ["jose.garcia@example.com", "José", "García", "Archived", "Engineering", "Engineer II", "tomasz.nowak@example.com"],
 ["mei.tanaka@example.com", "Mei", "Tanaka", "Active", "Data", "Data Analyst", "amara.okafor@example.com"],
]
write("progression_export_reordered.csv", PR_H, PR, encoding="utf-8-sig", delimiter=";")
# EdApp with the lower-case field names of seed 002's instructions, saved by Excel as "CSV UTF-8" (BOM).
EL_H = ["email", "username", "firstname", "lastname", "user groups", "roles", "password", "externalid"]
EL = [
 ["lena.novak@example.org", "lena.novak@example.org", "Lena", "Novák", "marketing; operations", "Admin; Learner; Prizing User", "", "000480"],
 ["omar.haddad@example.org", "", "Omar", "Haddad", "sales", "Learner; Prizing User", "", "000488"],
]
write("edapp_export_lowercase.csv", EL_H, EL, encoding="utf-8-sig")
# A staging tenant: special-use domains (.test, .local, .internal) are valid addresses that receive no mail.
PS = [
 ["Ada", "Lovelace", "ada@acme.test", "Head of Engineering", "Engineering", "", "Active"],
 ["Grace", "Hopper", "grace@build.local", "Senior Engineer", "Engineering", "ada@acme.test", "Active"],
 ["Alan", "Turing", "alan@hr.internal", "Engineer I", "Engineering", "ada@acme.test", "Pending"],
 ["Edsger", "Dijkstra", "edsger@example.com", "Engineer II", "Engineering", "grace@build.local", "Active"],
]
write("progression_export_staging.csv", P_H, PS)
print("ok")
