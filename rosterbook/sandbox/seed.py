"""The deterministic demo organisation the sandbox starts with (made up here; no real people).

``demo_organisation(users, seed)`` returns SCIM JSON documents (users, then groups) built from a
seeded RNG: the same arguments give the same organisation, ids included. It carries what real HR
exports trip over: accents and non-Latin scripts, an apostrophe in a surname, IDs with leading
zeros, a location whose name contains '|', Pending and Archived users, a management chain.
"""

from __future__ import annotations

import datetime
import random
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from rosterbook.sandbox.schema import ENTERPRISE_SCHEMA, GROUP_SCHEMA, HR_SCHEMA, USER_SCHEMA

DOMAIN = "lumen.example"
"""The demo organisation's email domain (RFC 2606 reserves .example)."""

# (given names, family names, family-name-first display): native spelling, ASCII spelling for logins
# (None = fold the native spelling to ASCII).
_N = tuple[str, str | None]
_CULTURES: list[tuple[list[_N], list[_N], bool]] = [
    (
        [("Zoë", None), ("Chloé", None), ("Élodie", None), ("François", None), ("Hélène", None), ("Jérôme", None), ("Anaïs", None), ("Benoît", None)],
        [("Lefèvre", None), ("Dubois", None), ("Girard", None), ("Moreau", None), ("Rousseau", None), ("Bénard", None), ("Lemaître", None)],
        False,
    ),
    (
        [("Łukasz", None), ("Małgorzata", None), ("Zofia", None), ("Paweł", None), ("Agnieszka", None), ("Bartłomiej", None), ("Jędrzej", None)],
        [("Nowak", None), ("Wójcik", None), ("Kaczmarek", None), ("Mazur", None), ("Król", None), ("Zając", None), ("Wróbel", None)],
        False,
    ),
    (
        [("Søren", None), ("Åse", None), ("Bjørn", None), ("Ingrid", None), ("Mads", None), ("Sigrid", None), ("Freja", None)],
        [("Jørgensen", None), ("Østergaard", None), ("Nielsen", None), ("Sørensen", None), ("Bækgaard", None), ("Holm", None)],
        False,
    ),
    (
        [("José", None), ("María", None), ("Begoña", None), ("Íñigo", None), ("Lucía", None), ("Andrés", None), ("Sebastián", None)],
        [("Núñez", None), ("García", None), ("Peña", None), ("Ibáñez", None), ("Muñoz", None), ("Fernández", None)],
        False,
    ),
    (
        [("João", None), ("Inês", None), ("Gonçalo", None), ("Letícia", None), ("Thiago", None), ("Conceição", None)],
        [("Gonçalves", None), ("Araújo", None), ("Simões", None), ("Magalhães", None), ("Brandão", None)],
        False,
    ),
    (
        [("Ngozi", None), ("Chinedu", None), ("Oluwaseun", None), ("Adaeze", None), ("Emeka", None), ("Folake", None), ("Chiamaka", None)],
        [("Okafor", None), ("Adeyemi", None), ("Okonkwo", None), ("Balogun", None), ("Nwosu", None), ("Adebayo", None)],
        False,
    ),
    (
        [("Siobhán", None), ("Seán", None), ("Aoife", None), ("Niamh", None), ("Pádraig", None), ("Caoimhe", None)],
        [("O'Brien", None), ("Ó Súilleabháin", None), ("Mac Giolla", None), ("Byrne", None), ("Walsh", None)],
        False,
    ),
    (
        [("Jürgen", None), ("Lena", None), ("Maximilian", None), ("Jörg", None), ("Anneliese", None), ("Götz", None)],
        [("Müller", None), ("Groß", None), ("Schäfer", None), ("Köhler", None), ("Weiß", None), ("Schröder", None)],
        False,
    ),
    (
        [("Çağla", None), ("İsmail", None), ("Gülşen", None), ("Oğuz", None), ("Şule", None), ("Barış", None)],
        [("Öztürk", None), ("Yılmaz", None), ("Şahin", None), ("Çelik", None), ("Doğan", None), ("Kılıç", None)],
        False,
    ),
    (
        [("Minh", None), ("Thảo", None), ("Hùng", None), ("Ngọc", None), ("Phương", None), ("Dũng", None)],
        [("Nguyễn", None), ("Trần", None), ("Lê", None), ("Phạm", None), ("Hoàng", None), ("Đặng", None)],
        True,
    ),
    (
        [("Priya", None), ("Arjun", None), ("Ananya", None), ("Rohan", None), ("Kavya", None), ("Vikram", None)],
        [("Iyer", None), ("Chatterjee", None), ("Reddy", None), ("Nair", None), ("Sharma", None), ("Patel", None)],
        False,
    ),
    (
        [("Amelia", None), ("Oliver", None), ("Grace", None), ("Harry", None), ("Isla", None), ("Jack", None)],
        [("Smith", None), ("Taylor", None), ("Brown", None), ("Wilson", None), ("Evans", None), ("Thompson", None)],
        False,
    ),
    (
        [("伟", "wei"), ("芳", "fang"), ("静", "jing"), ("磊", "lei"), ("婷", "ting"), ("杰", "jie"), ("子涵", "zihan")],
        [("陈", "chen"), ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("杨", "yang"), ("周", "zhou")],
        True,
    ),
    (
        [("結衣", "yui"), ("翔", "sho"), ("陽菜", "hina"), ("蓮", "ren"), ("美咲", "misaki"), ("大翔", "hiroto")],
        [("佐藤", "sato"), ("鈴木", "suzuki"), ("高橋", "takahashi"), ("田中", "tanaka"), ("渡辺", "watanabe")],
        True,
    ),
    (
        [("Аня", "anya"), ("Олена", "olena"), ("Дмитро", "dmytro"), ("Ігор", "ihor"), ("Оксана", "oksana"), ("Тарас", "taras")],
        [("Ковальчук", "kovalchuk"), ("Бондаренко", "bondarenko"), ("Мельник", "melnyk"), ("Шевченко", "shevchenko"), ("Ткаченко", "tkachenko")],
        False,
    ),
    (
        [("محمد", "mohammed"), ("فاطمة", "fatima"), ("أحمد", "ahmed"), ("ليلى", "layla"), ("يوسف", "youssef"), ("مريم", "maryam")],
        [("حسن", "hassan"), ("العلي", "alali"), ("منصور", "mansour"), ("خليل", "khalil"), ("ناصر", "nasser")],
        False,
    ),
]

# department -> (teams, positions from junior to senior)
DEPARTMENTS: dict[str, tuple[list[str], list[str]]] = {
    "Engineering": (["Platform", "Mobile", "Data", "Security"], ["Software Engineer", "Senior Software Engineer", "Staff Engineer"]),
    "Product": (["Discovery", "Growth"], ["Product Analyst", "Product Manager", "Senior Product Manager"]),
    "Design": (["Brand", "Product Design"], ["Designer", "Senior Designer", "Design Lead"]),
    "Sales": (["EMEA Sales", "APAC Sales", "Americas Sales"], ["Sales Development Rep", "Account Executive", "Sales Director"]),
    "Marketing": (["Content", "Events"], ["Marketing Coordinator", "Marketing Manager", "Head of Marketing"]),
    "Customer Success": (["Onboarding", "Support"], ["Support Specialist", "Customer Success Manager", "CS Lead"]),
    "Finance": (["Accounting", "FP&A"], ["Accountant", "Financial Analyst", "Finance Manager"]),
    "People": (["Talent", "People Ops"], ["People Partner", "Recruiter", "Head of People"]),
    "Operations": (["Facilities", "IT"], ["Operations Associate", "IT Administrator", "Operations Manager"]),
}

LOCATIONS = [
    "London",
    "Paris",
    "Kraków",
    "København",
    "São Paulo",
    "Lagos",
    "上海",
    "Kyiv",
    "Madrid",
    "Dublin | Docklands",  # a literal '|' inside one name: lists of locations must escape it
    "Remote",
]

PHONE_PREFIXES = ["+44 20 7946 ", "+33 1 70 18 ", "+48 12 345 ", "+45 32 12 ", "+55 11 3456 ", "+234 1 280 "]

CROSS_GROUPS = ["Managers", "Mentors", "First Aiders", "New Starters"]
"""Groups across departments, besides one group per department."""

ROLE_NAMES = ["Admin", "Manager", "Learner", "Author", "Reviewer"]

DEFAULT_USERS = 300
"""How many users a new sandbox gets when not told otherwise."""

_REFERENCE_DAY = datetime.date(2025, 6, 30)  # fixed, so start dates do not depend on when the seed runs
_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "Ae", "ß": "ss", "đ": "d", "Đ": "D", "ı": "i", "œ": "oe"})


def ascii_login(text: str) -> str:
    """Fold a name to the ASCII letters and digits a login is made of ('Ó Súilleabháin' -> 'osuilleabhain')."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


@dataclass
class _Person:
    index: int
    id: str
    given: str
    family: str
    display: str
    login: str
    department: str
    team: str
    position: str
    status: str
    manager: int | None
    roles: list[str]
    start: datetime.date


def _uuid(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128), version=4).hex


def _people(users: int, rng: random.Random) -> list[_Person]:
    """The people of the organisation: a CEO, department heads, team leads, then members."""
    teams = [(dept, team) for dept, (names, _) in DEPARTMENTS.items() for team in names]
    # Small organisations have fewer teams, so that every team has people in it.
    teams = teams[: max(1, min(len(teams), users // 6))]
    departments = list(dict.fromkeys(dept for dept, _ in teams))
    heads: dict[str, int] = {}
    leads: dict[tuple[str, str], int] = {}
    logins: dict[str, int] = {}
    people: list[_Person] = []
    for index in range(users):
        given_pool, family_pool, family_first = rng.choice(_CULTURES)
        given, given_ascii = rng.choice(given_pool)
        family, family_ascii = rng.choice(family_pool)
        if family_first:
            display = f"{family}{given}" if _is_cjk(given) else f"{family} {given}"
        else:
            display = f"{given} {family}"
        base = f"{given_ascii or ascii_login(given)}.{family_ascii or ascii_login(family)}"
        logins[base] = logins.get(base, 0) + 1
        login = base if logins[base] == 1 else f"{base}{logins[base]}"

        manager: int | None
        if index == 0:
            (dept, team), rank, manager, position = teams[0], 2, None, "Chief Executive Officer"
        elif index <= len(departments):
            dept = departments[index - 1]
            team = next(t for d, t in teams if d == dept)
            heads[dept], rank, manager, position = index, 2, 0, DEPARTMENTS[dept][1][2]
        elif index <= len(departments) + len(teams):
            dept, team = teams[index - len(departments) - 1]
            leads[(dept, team)], rank, manager, position = index, 1, heads.get(dept, 0), DEPARTMENTS[dept][1][1]
        else:
            dept, team = rng.choice(teams)
            rank, manager = 0, leads.get((dept, team), heads.get(dept, 0))
            position = DEPARTMENTS[dept][1][0] if rng.random() < 0.75 else DEPARTMENTS[dept][1][1]

        roll = rng.random()
        status = "Active" if rank > 0 or roll < 0.84 else ("Pending" if roll < 0.92 else "Archived")
        if status == "Pending":
            start = _REFERENCE_DAY + datetime.timedelta(days=rng.randint(-20, 60))
        else:
            start = _REFERENCE_DAY - datetime.timedelta(days=rng.randint(30, 13 * 365))
        roles = ["Manager", "Learner"] if rank > 0 else ["Learner"]
        extra = rng.random()
        if index == 0 or extra < 0.02:
            roles = ["Admin", *roles]
        elif extra < 0.07:
            roles.append("Author")
        elif extra < 0.10:
            roles.append("Reviewer")
        people.append(_Person(index, _uuid(rng), given, family, display, login, dept, team, position, status, manager, roles, start))
    return people


def _is_cjk(text: str) -> bool:
    return any("CJK" in unicodedata.name(c, "") for c in text)


def demo_organisation(users: int = DEFAULT_USERS, seed: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The demo organisation as (user documents, group documents), each carrying its id; no meta."""
    rng = random.Random(seed)
    people = _people(users, rng)
    # Employee numbers follow hire order; both they and external ids keep their leading zeros.
    by_start = sorted(people, key=lambda p: (p.start, p.index))
    employee_numbers = {p.index: f"{n:06d}" for n, p in enumerate(by_start, start=1)}
    external_ids = rng.sample(range(10_000, 10_000 + max(users, 1) * 10), users)

    user_docs: list[dict[str, Any]] = []
    for person in people:
        email = f"{person.login}@{DOMAIN}"
        doc: dict[str, Any] = {
            "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA, HR_SCHEMA],
            "id": person.id,
            "externalId": f"{external_ids[person.index]:08d}",
            "userName": email,
            "name": {"givenName": person.given, "familyName": person.family, "formatted": person.display},
            "displayName": person.display,
            "title": person.position,
            "active": person.status == "Active",
            "emails": [{"value": email, "type": "work", "primary": True}],
            "roles": [{"value": role} for role in person.roles],
        }
        if rng.random() < 0.8:
            doc["phoneNumbers"] = [{"value": f"{rng.choice(PHONE_PREFIXES)}{rng.randint(0, 9999):04d}", "type": "work"}]
        enterprise: dict[str, Any] = {"employeeNumber": employee_numbers[person.index], "department": person.department}
        if person.manager is not None:
            manager = people[person.manager]
            enterprise["manager"] = {"value": manager.id, "displayName": manager.display}
        doc[ENTERPRISE_SCHEMA] = enterprise
        locations = rng.sample(LOCATIONS, 2 if rng.random() < 0.15 else 1)
        doc[HR_SCHEMA] = {
            "accountStatus": person.status,
            "team": person.team,
            "position": person.position,
            "locations": locations,
            "startDate": person.start.isoformat(),
        }
        user_docs.append(doc)

    memberships: dict[str, list[_Person]] = {dept: [] for dept in DEPARTMENTS}
    memberships.update({name: [] for name in CROSS_GROUPS})
    for person in people:
        if person.status == "Archived":
            continue  # leavers are taken out of every group
        memberships[person.department].append(person)
        if "Manager" in person.roles:
            memberships["Managers"].append(person)
        if person.status == "Active" and person.start < _REFERENCE_DAY - datetime.timedelta(days=5 * 365) and rng.random() < 0.3:
            memberships["Mentors"].append(person)
        if rng.random() < 0.05:
            memberships["First Aiders"].append(person)
        if person.start > _REFERENCE_DAY - datetime.timedelta(days=120):
            memberships["New Starters"].append(person)
    group_docs = [
        {
            "schemas": [GROUP_SCHEMA],
            "id": _uuid(rng),
            "displayName": name,
            "members": [{"value": p.id, "display": p.display, "type": "User"} for p in members],
        }
        for name, members in memberships.items()
        if members
    ]
    return user_docs, group_docs
