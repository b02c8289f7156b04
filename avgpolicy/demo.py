"""Demo: the bundled example school board end to end, on a deterministic synthetic student body.

``avgpolicy demo`` loads the bundled policy set, generates a school board's
students from the catalogue (both schools, years and groups, consents by parents
and by students, students over 16, students who left and a few bad records),
counts the denials of every partner's feed (each permit's partner, purpose and
fields) by reason with the compiled decision functions, sends every feed
through an export log in a temporary folder (and one staff member's manual
export), decides one feed again inside DuckDB (``policy.plan(...).run``, the
``sql`` extra), and prints a compact overview: in words for the school, figures
for developers, and at the end where the dashboard is and the GDPR art. 15
answer for one synthetic student.
"""

from __future__ import annotations

import datetime
import importlib
import importlib.resources
import json
import random
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from .testing._values import condition_values

if TYPE_CHECKING:
    from .model import FieldInfo, PolicyModel
    from .policy import Policy

#: the pseudonym key of the demo (a real deployment keeps its key secret and out of the code)
DEMO_PSEUDONYM_KEY = b"avgpolicy demo key - not a secret"

_FIRST_NAMES = ("Emma", "Noah", "Julia", "Liam", "Mila", "Luca", "Sophie", "Daan", "Tess", "Sem", "Zoë", "Finn",
                "Nora", "Levi", "Saar", "Milan", "Yara", "Bram", "Fatima", "Mohammed", "Anouk", "Jesse", "Lotte",
                "Ahmed", "Sara", "Thijs", "Fenna", "Ravi", "Isa", "Mees")
_SURNAMES = (("", "Jansen"), ("de", "Vries"), ("van den", "Berg"), ("", "Bakker"), ("van", "Dijk"), ("", "Visser"),
             ("", "Smit"), ("", "Meijer"), ("de", "Boer"), ("", "Mulder"), ("de", "Groot"), ("", "Bos"),
             ("", "Yılmaz"), ("", "El Amrani"), ("", "Nguyen"), ("van", "Leeuwen"), ("", "Hendriks"))
_PLACES = (("Tiel", "4001"), ("Culemborg", "4101"), ("Geldermalsen", "4191"), ("Zaltbommel", "5301"),
           ("Buren", "4116"), ("Wijchen", "6601"))
_VO_TYPES = (("vmbo", 4, 0.38), ("havo", 5, 0.32), ("vwo", 6, 0.25), ("vavo", 2, 0.05))


def bundled_policy_path() -> Path:
    """The example set: shipped in the wheel as ``avgpolicy/_data/policies``, else ``./policies`` of the checkout."""
    shipped = importlib.resources.files("avgpolicy") / "_data" / "policies"
    if shipped.is_dir():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parent.parent / "policies"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("the bundled example policies are missing from this installation")


# ---------------------------------------------------------------------------
# The synthetic school board

def _school_year_start(day: datetime.date) -> datetime.date:
    year = day.year if day.month >= 8 else day.year - 1
    return datetime.date(year, 8, 1)


def _birthday(rng: random.Random, age_on_sept: int, year_start: datetime.date) -> datetime.date:
    """A birth date such that the student is ``age_on_sept`` on 1 October of the school year (roughly)."""
    latest = datetime.date(year_start.year - age_on_sept, 10, 1)
    return latest - datetime.timedelta(days=rng.randrange(365))


def _value_by_type(rng: random.Random, field: FieldInfo, i: int) -> Any:
    """A plausible value for a field the generator has no specific knowledge of."""
    if field.type == "int":
        return rng.randrange(0, 10)
    if field.type == "bool":
        return rng.random() < 0.5
    if field.type == "date":
        return datetime.date(2020, 1, 1) + datetime.timedelta(days=rng.randrange(2500))
    if field.type == "set":
        return frozenset(f"{field.name}-{rng.randrange(5)}" for _ in range(rng.randrange(3)))
    return f"{field.name}-{i}"


def _value_from_conditions(rng: random.Random, field: FieldInfo, i: int, mentioned: Sequence[Any]) -> Any:
    """Mostly a value the policy's own conditions compare the field with (so that a policy of one's
    own, with fields the generator does not know, still has students inside its rules), else one of
    its type."""
    if field.type == "set":
        words = [v for v in mentioned if type(v) is str]
        if words and rng.random() < 0.7:
            return frozenset(rng.sample(words, rng.randint(1, len(words))))
    else:
        fitting = [v for v in mentioned if _fits(v, field.type)]
        if fitting and rng.random() < 0.7:
            return rng.choice(fitting)
    return _value_by_type(rng, field, i)


_PY_TYPES = {"text": str, "int": int, "bool": bool, "date": datetime.date, "set": frozenset}


def _fits(value: Any, field_type: str) -> bool:
    return type(value) is _PY_TYPES.get(field_type)


def _consents(rng: random.Random, topics: Sequence[str], birth: datetime.date, today: datetime.date) -> dict[str, Any]:
    from .decision import Consent

    out: dict[str, Any] = {}
    sixteen = datetime.date(birth.year + 16, birth.month, min(birth.day, 28))
    for topic in topics:
        if rng.random() < 0.35:
            continue  # never asked, or no answer
        given = today - datetime.timedelta(days=rng.randrange(30, 1500))
        by = "parent" if given < sixteen else "student"
        if rng.random() < 0.04:  # given by the wrong party: must not count
            by = "student" if by == "parent" else "parent"
        withdrawn = None
        if rng.random() < 0.08:
            withdrawn = given + datetime.timedelta(days=rng.randrange(1, 400))
        out[topic] = Consent(by=by, given=given, withdrawn=withdrawn)
    return out


def _spoil(rng: random.Random, student: dict[str, Any]) -> None:
    """Make one record bad the ways real exports are: a missing, empty or ill-typed value."""
    key = rng.choice(["actief", "geboortedatum", "leerjaar", "school", "lesgroepen", "onderwijstype"])
    kind = rng.randrange(4)
    if kind == 0:
        student.pop(key, None)
    elif kind == 1:
        student[key] = None
    elif kind == 2:
        student[key] = str(student.get(key, ""))  # e.g. leerjaar "5", geboortedatum "2012-03-01"
    else:
        student[key] = ["?"] if key != "lesgroepen" else "5B"


def generate_students(policy: Policy, count: int, *, seed: int = 2025,
                      today: datetime.date = datetime.date(2026, 3, 2)) -> list[dict[str, Any]]:
    """``count`` deterministic synthetic students for the set's catalogue (same seed, same students).

    Fields the generator knows by name (the example catalogue's) get realistic values;
    any other field gets a value of its type. Records also carry the set's other
    datasets under ``dataset.field`` keys (one current row each: a test result, an absence).
    """
    rng = random.Random(seed)
    model: PolicyModel = policy.model
    cat = model.catalogue
    subject = cat.subject_fields
    mentioned = condition_values(policy)
    schools = [s for s in mentioned.get("school", []) if isinstance(s, str)] or ["00AA"]
    primary = schools[0]
    topics = sorted(model.consents)
    year_start = _school_year_start(today)
    other_fields = [fi for ds in cat.datasets.values() if not ds.subject for fi in ds.fields]
    students = []
    for i in range(count):
        school = schools[0] if rng.random() < 0.45 or len(schools) == 1 else rng.choice(schools[1:])
        if school == primary:
            kind, leerjaar = "po", rng.randint(1, 8)
            age = 4 + leerjaar - 1
            stamgroep = f"{leerjaar}{rng.choice('AB')}"
        else:
            kind, years, _ = rng.choices(_VO_TYPES, weights=[t[2] for t in _VO_TYPES])[0]
            leerjaar = rng.randint(1, years)
            age = 12 + leerjaar - 1 + (5 if kind == "vavo" else 0) + (rng.random() < 0.15)
            stamgroep = f"{kind[0].upper()}{leerjaar}{rng.choice('AB')}"
        birth = _birthday(rng, age, year_start)
        sid = f"L{100000 + i}"
        voorvoegsel, achternaam = rng.choice(_SURNAMES)
        place, pc = rng.choice(_PLACES)
        groups = {stamgroep} | {f"{stamgroep}-{v}" for v in rng.sample(["ne", "en", "wi", "gs"], rng.randint(0, 3))}
        if rng.random() < 0.05:
            groups.add("plusklas")
        support = rng.random() < 0.07
        gone = rng.random() < 0.05  # left the school (unenrolled) before today
        known: dict[str, Any] = {
            "id": sid, "eckid": f"https://ketenid.nl/201703/{rng.getrandbits(64):016x}",
            "bsn": f"{rng.randrange(10**8, 10**9)}", "roepnaam": rng.choice(_FIRST_NAMES),
            "voorvoegsel": voorvoegsel, "achternaam": achternaam, "geboortedatum": birth,
            "geslacht": rng.choice("MVMVMVX"), "emailadres": f"{sid.lower()}@leerling.example.nl",
            "adres": f"Dorpsstraat {rng.randint(1, 200)}", "postcode": f"{pc[:3]}{rng.randint(0, 9)} "
            f"{rng.choice('ABCDEFGHJK')}{rng.choice('ABCDEFGHJK')}", "woonplaats": place,
            "nationaliteit": "NL" if rng.random() < 0.92 else rng.choice(["TR", "MA", "SY", "PL", "BE"]),
            "foto": f"pasfoto/{sid}.jpg", "school": school, "leerjaar": leerjaar, "onderwijstype": kind,
            "stamgroep": stamgroep, "lesgroepen": frozenset(groups),
            "inschrijfdatum": max(birth + datetime.timedelta(days=4 * 365), year_start - datetime.timedelta(
                days=365 * (leerjaar - 1) + rng.randrange(30))),
            "actief": not gone, "ondersteuningsaanvraag": support,
            "verzuimtraject": school != primary and rng.random() < 0.03,
            "zorgnotitie": "Handelingsplan lezen" if support else "",
            "medische_notitie": "Notenallergie" if rng.random() < 0.04 else "",
            "dyslexieverklaring": rng.random() < 0.08,
            "ondersteuningsbehoefte": "OPP: extra instructie" if support else "",
        }
        student = {name: known[name] if _fits(known.get(name), fi.type)
                   else _value_from_conditions(rng, fi, i, mentioned.get(name, ()))
                   for name, fi in subject.items()}
        if cat.left in subject:  # the unenrolment date: None while the student is at the school (spec 7.7)
            student[cat.left] = today - datetime.timedelta(days=rng.randrange(1, 300)) if gone else None
        for fi in other_fields:
            student[fi.ref] = _value_by_type(rng, fi, i)
        if topics:
            student["consents"] = _consents(rng, topics, birth, today)
        if rng.random() < 0.01:
            _spoil(rng, student)
        students.append(student)
    return students


# ---------------------------------------------------------------------------
# Feeds and the overview

@attrs.frozen
class Feed:
    partner: str
    purpose: str
    fields: tuple[str, ...]


@attrs.define
class FeedResult:
    feed: Feed
    students_shared: int = 0
    values_shared: int = 0
    fields_shared: set[str] = attrs.field(factory=set)
    decisions: int = 0
    fields_denied: int = 0
    informed: int = 0  # allowed, but the student must be told (parental consent after 16)
    denials: Counter[str] = attrs.field(factory=Counter)
    #: students with no field allowed, by the main reason (the first of PLAIN_REASONS that applies)
    left_out: Counter[str] = attrs.field(factory=Counter)


@attrs.define
class Recorded:
    """What the demo's export log holds and what the school can show from it."""

    folder: Path
    log_path: Path | None = None  # None: no export log (``why_not`` says why)
    why_not: str | None = None
    exports: int = 0
    manual: int = 0  # exports by a staff member (channel "manual")
    staff: str | None = None
    verified: bool = False
    dashboard: Path | None = None
    student: Any = None  # the key of the student whose art. 15 answer is shown
    access: dict[str, Any] | None = None  # avgpolicy.exports.access.build_access's data
    access_path: Path | None = None


@attrs.define
class BulkFeed:
    """One feed decided again inside DuckDB (``policy.plan(...).run``) beside ``filter``."""

    feed: Feed | None = None
    note: str | None = None  # why it did not run
    rows: list[dict[str, Any]] = attrs.field(factory=list)  # plan.run's rows
    same: bool = False  # the same rows as filter's (in any order)
    plan_seconds: float = 0.0  # plan and run, end to end
    filter_seconds: float = 0.0
    load_seconds: float = 0.0  # writing and loading the table (not compared)


@attrs.define
class DemoResult:
    students: int
    schools: Counter[str]
    bad_records: int
    inactive: int
    over_16: int
    feeds: list[FeedResult]
    decide_seconds: float
    filter_seconds: float  # sending the feeds: through the export log, or filter when there is none
    tests_passed: int = 0
    tests_failed: int = 0
    moment_reason: str = "given"
    left: int = 0  # students whose unenrolment date is before the day of the feeds
    recorded: Recorded | None = None
    bulk: BulkFeed | None = None

    @property
    def decisions(self) -> int:
        return sum(f.decisions for f in self.feeds)

    @property
    def denials(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for f in self.feeds:
            total.update(f.denials)
        return total


def feeds(policy: Policy) -> list[Feed]:
    """Every (partner, purpose) some permit covers, with the union of the fields its permits name."""
    m = policy.model
    out: dict[tuple[str, str], dict[str, None]] = {}
    for rule in m.rules:
        if rule.effect != "permit":
            continue
        for partner in sorted(p for p in m.partners if rule.partners.matches(p)):
            for purpose in sorted(u for u in m.purposes if rule.purposes.matches(u)):
                fields = out.setdefault((partner, purpose), {})
                for g in rule.grants:
                    fields.setdefault(g.ref)
    return [Feed(p, u, tuple(f)) for (p, u), f in sorted(out.items())]


#: reason codes in words a school understands, in the order that names a left-out student's main reason
PLAIN_REASONS = {
    "agreement_inactive": "no processing agreement in force",
    "outside_agreement": "outside what the processing agreement covers",
    "left_school": "has left the school",
    "forbidden": "a rule forbids it",
    "no_consent": "no valid consent",
    "not_in_subset": "not among the students the rule is for",
    "outside_window": "the rule is not in force on that day",
    "missing_attribute": "data missing or unusable in the student record",
    "no_permit": "no rule permits it",
}


def main_reason(codes: set[str]) -> str:
    """The code that best explains to a school why a student received nothing."""
    return next((code for code in PLAIN_REASONS if code in codes), min(codes) if codes else "no_permit")


#: the moment of the bundled example's feeds: a school day inside every agreement of the example set
BUNDLED_MOMENT = datetime.datetime(2026, 3, 2, 10, 0)


def pick_moment(policy: Policy, today: datetime.date) -> tuple[datetime.datetime, str]:
    """A moment for the feeds of a policy set of one's own, and why it was chosen.

    Today at 10:00 when no other day lets more feeds take effect (a permit in force and, for a partner
    with agreements, one of them valid); else the day that lets most take effect (the nearest to today
    of those), among today and every day an agreement or a permit window starts or ends.
    """
    m = policy.model
    all_feeds = feeds(policy)
    candidates = {today}
    for partner in m.partners.values():
        for a in partner.agreements:
            candidates.update(d for d in (a.window.start, a.window.end) if d is not None)
    for rule in m.rules:
        candidates.update(d for d in (rule.window.start, rule.window.end) if d is not None)

    def live(day: datetime.date) -> int:
        count = 0
        for feed in all_feeds:
            agreements = m.partners[feed.partner].agreements
            if agreements and not any(a.window.contains_date(day) for a in agreements):
                continue
            if any(r.effect == "permit" and r.partners.matches(feed.partner) and r.purposes.matches(feed.purpose)
                   and r.window.contains_date(day) for r in m.rules):
                count += 1
        return count

    best = max(sorted(candidates), key=lambda d: (live(d), -abs((d - today).days)))
    best_live, today_live = live(best), live(today)
    moment = datetime.datetime(best.year, best.month, best.day, 10, 0)
    if best_live == today_live:
        best, moment = today, datetime.datetime(today.year, today.month, today.day, 10, 0)
        why = f"today; {today_live} of {len(all_feeds)} feeds can take effect (pass --at to choose another moment)"
    else:
        why = (f"{best_live} of {len(all_feeds)} feeds can take effect then, against {today_live} today "
               f"({today}): agreements or rule windows are not in force today (pass --at to choose)")
    return moment, why


def _age(birth: Any, day: datetime.date) -> int | None:
    if type(birth) is not datetime.date:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def run_feeds(policy: Policy, students: Sequence[dict[str, Any]], at: Any,
              progress: TextIO | None = None, log: Any = None) -> tuple[list[FeedResult], float, float]:
    """Every feed through ``compile`` (denials by reason) and sent: through ``policy.export`` into
    ``log`` (an ExportLog) when given, else ``filter``. Returns the results and the seconds spent
    deciding and sending."""
    results = []
    decide_seconds = send_seconds = 0.0
    all_feeds = feeds(policy)
    for k, feed in enumerate(all_feeds, 1):
        if progress is not None:
            progress.write(f"\r\033[K  feed {k}/{len(all_feeds)}: {feed.partner} / {feed.purpose}")
            progress.flush()
        result = FeedResult(feed)
        check = policy.compile(partner=feed.partner, purpose=feed.purpose,
                               fields=list(feed.fields))
        started = time.perf_counter()
        decisions = [check(s, at=at) for s in students]
        decide_seconds += time.perf_counter() - started
        result.decisions = len(decisions)
        for d in decisions:
            codes: set[str] = set()
            for fd in d.fields.values():
                if not fd.allowed:
                    result.fields_denied += 1
                    field_codes = {r.code for r in fd.reasons}
                    result.denials.update(field_codes)
                    codes |= field_codes
                elif any(r.code == "inform_student" for r in fd.reasons):
                    result.informed += 1
            if not d.allowed and not any(fd.allowed for fd in d.fields.values()):
                result.left_out[main_reason(codes)] += 1
        started = time.perf_counter()
        if log is None:
            rows = list(policy.filter(feed.partner, feed.purpose, list(feed.fields), students, at=at))
        else:
            with policy.export(feed.partner, feed.purpose, list(feed.fields), at=at, actor=NIGHTLY_FEED,
                               channel="nightly-feed", log=log) as export:
                rows = list(export.rows(students))  # (a SIS would send each row to the partner here)
        send_seconds += time.perf_counter() - started  # (the tallies below are not timed)
        for row in rows:
            result.students_shared += 1
            result.values_shared += len(row)
            result.fields_shared.update(row)
        results.append(result)
    if progress is not None:
        progress.write("\r\033[K")
        progress.flush()
    return results, decide_seconds, send_seconds


#: who sends the nightly feeds, in the export log
NIGHTLY_FEED = "sis-nightly"
#: the staff member of the demo's manual export (an intern begeleider sending a file by hand)
STAFF = "m.bakker"


def _safe_name(key: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(key))[:60] or "student"


def open_log(policy: Policy, folder: Path) -> tuple[Any, str | None]:
    """The demo's ExportLog in ``folder`` (SQLite), or None and why not (no key field to record)."""
    from .exports import ExportLog

    catalogue = policy.model.catalogue
    if catalogue.key is None and "id" not in catalogue.subject_fields:
        return None, ("the catalogue has no key field, so an export log cannot record which students were "
                      "sent: mark the identifying field `key` (spec 7.7)")
    return ExportLog(folder / "exports.sqlite"), None


def manual_export(policy: Policy, log: Any, students: Sequence[dict[str, Any]], results: Sequence[FeedResult],
                  at: Any) -> int:
    """A staff member sends a few students' data by hand (channel ``manual``): the feed to the
    samenwerkingsverband when the policy has one, else the first feed that shares anything."""
    shared = [r.feed for r in results if r.students_shared]
    if not shared:
        return 0
    feed = next((f for f in shared if (f.partner, f.purpose) == ("swv", "ondersteuning")), shared[0])
    with policy.export(feed.partner, feed.purpose, list(feed.fields), at=at, actor=STAFF, channel="manual",
                       log=log) as export:
        for _ in zip(range(3), export.rows(students), strict=False):  # three students: a file, not a feed
            pass
    return 1


def record_and_report(policy: Policy, log: Any, students: Sequence[dict[str, Any]], results: Sequence[FeedResult],
                      at: Any, folder: Path, today: datetime.date) -> Recorded:
    """After the feeds: one manual export, the log verified, the dashboard written, and the art. 15
    answer for the student the most organisations received data about (written in full as HTML)."""
    from .exports.access import build_access, render_access
    from .exports.dashboard import render_dashboard

    manual = manual_export(policy, log, students, results, at)
    records = log.exports()
    recorded = Recorded(folder=folder, log_path=folder / "exports.sqlite", exports=len(records), manual=manual,
                        staff=STAFF if manual else None, verified=log.verify().ok)
    recorded.dashboard = folder / "dashboard.html"
    recorded.dashboard.write_text(render_dashboard(policy, log, today=today), encoding="utf-8")
    partners: dict[Any, set[str]] = {}
    for r in records:
        for key in r.keys:
            partners.setdefault(key, set()).add(r.partner)
    if partners:
        key = min(partners, key=lambda k: (-len(partners[k]), str(k)))
        recorded.student = key
        recorded.access = build_access(log, key, today=today)
        recorded.access_path = folder / f"access-{_safe_name(key)}.html"
        recorded.access_path.write_text(render_access(log, key, "html", today=today), encoding="utf-8")
    return recorded


# ---------------------------------------------------------------------------
# The bulk feed inside DuckDB

_DUCKDB_TYPES = {"text": "VARCHAR", "int": "BIGINT", "bool": "BOOLEAN", "date": "DATE", "set": "VARCHAR[]"}


def _json_value(value: Any, field_type: str) -> Any:
    """A student's value as the table holds it: None when missing or ill-typed (unknown, as in the engines)."""
    if not _fits(value, field_type):
        return None
    if field_type == "date":
        return value.isoformat()
    if field_type == "set":
        return sorted(value)
    return value


def _rows_key(rows: Iterable[dict[str, Any]]) -> list[tuple[tuple[str, str], ...]]:
    """Rows in an order-free, comparable form (a database need not return them in filter's order)."""
    return sorted(tuple(sorted((k, repr(v)) for k, v in row.items())) for row in rows)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def bulk_feed(policy: Policy, students: Sequence[dict[str, Any]], results: Sequence[FeedResult], at: Any,
              folder: Path) -> BulkFeed:
    """The feed that shares with the most students, of those SQL can decide (subject fields only, no
    NotTranslatable), decided inside DuckDB over a table of the synthetic students (loaded from a
    JSON lines file, as a SIS export would be), timed beside ``filter`` on the same students."""
    missing = [name for name in ("duckdb", "sqlglot") if not _importable(name)]
    if missing:
        what = " and ".join({"duckdb": "DuckDB", "sqlglot": "sqlglot"}[m] for m in missing)
        return BulkFeed(note=f"{what} {'is' if len(missing) == 1 else 'are'} not installed: pip install "
                             "'avgpolicy[sql]' (in a checkout: pip install '.[sql]') adds it")
    import duckdb

    from .sql import NotTranslatable

    catalogue = policy.model.catalogue
    subject = catalogue.subject_fields
    prefix = catalogue.subject + "."
    key = catalogue.key or ("id" if "id" in subject else None)
    chosen = None
    for r in sorted(results, key=lambda r: -r.students_shared):
        if not r.students_shared or not all(f.startswith(prefix) for f in r.feed.fields):
            continue
        try:
            plan = policy.plan(r.feed.partner, r.feed.purpose, list(r.feed.fields), at=at)
            if plan.needs_consents and key is None:  # a consent table is joined on the student's key
                continue
            plan.to_sql("duckdb", table="students", consents={"table": "consents", "key": key}
                        if plan.needs_consents else None)
        except NotTranslatable:
            continue
        chosen = r.feed
        break
    if chosen is None:
        return BulkFeed(note="no feed of subject fields that shares anything and that SQL can decide "
                             "(docs/sql.md: NotTranslatable; consent needs a key field)")
    started = time.perf_counter()
    table_file = folder / "students.jsonl"
    with open(table_file, "w", encoding="utf-8") as fh:
        for s in students:
            fh.write(json.dumps({name: _json_value(s.get(name), fi.type) for name, fi in subject.items()},
                                ensure_ascii=False) + "\n")
    connection = duckdb.connect()
    columns = {name: _DUCKDB_TYPES[fi.type] for name, fi in subject.items()}
    connection.execute("CREATE TABLE students AS SELECT * FROM read_json($path, format='newline_delimited', "
                       "columns=$columns)", {"path": str(table_file), "columns": columns})
    consents = None
    if plan.needs_consents and key is not None:
        consents_file = folder / "consents.jsonl"
        with open(consents_file, "w", encoding="utf-8") as fh:
            for s in students:
                for topic, c in (s.get("consents") or {}).items():
                    fh.write(json.dumps({"student": _json_value(s.get(key), subject[key].type), "topic": topic,
                                         "party": c.by, "given": c.given.isoformat(),
                                         "withdrawn": c.withdrawn.isoformat() if c.withdrawn else None}) + "\n")
        connection.execute("CREATE TABLE consents AS SELECT * FROM read_json($path, format='newline_delimited', "
                           "columns=$columns)", {"path": str(consents_file), "columns": {
                               "student": _DUCKDB_TYPES[subject[key].type], "topic": "VARCHAR",
                               "party": "VARCHAR", "given": "DATE", "withdrawn": "DATE"}})
        consents = {"table": "consents", "key": key}
    load_seconds = time.perf_counter() - started
    fields = list(chosen.fields)
    started = time.perf_counter()
    in_db = policy.plan(chosen.partner, chosen.purpose, fields, at=at).run(connection, table="students",
                                                                             consents=consents)
    plan_seconds = time.perf_counter() - started
    started = time.perf_counter()
    in_python = list(policy.filter(chosen.partner, chosen.purpose, fields, students, at=at))
    filter_seconds = time.perf_counter() - started
    connection.close()
    return BulkFeed(feed=chosen, rows=in_db, same=_rows_key(in_db) == _rows_key(in_python),
                    plan_seconds=plan_seconds, filter_seconds=filter_seconds, load_seconds=load_seconds)


def run_demo(*, students: int = 5000, seed: int = 2025, at: Any = None, out: TextIO | None = None,
             progress: TextIO | None = None, paths: Iterable[str] | None = None,
             folder: str | Path | None = None, bulk: bool = True) -> DemoResult:
    """Run the demo and print its overview to ``out`` (if given); returns the figures.

    The export log, the dashboard, the art. 15 answer and the bulk feed's table are written to
    ``folder`` (default: a new temporary folder, left for you to open); ``bulk=False`` skips the
    DuckDB feed."""
    from .loader import load
    from .runtime import local_day
    from .testing import run

    policy = load(*(list(paths) if paths else [bundled_policy_path()]), pseudonym_key=DEMO_PSEUDONYM_KEY)
    why = "given"
    if at is None and not paths:
        at, why = BUNDLED_MOMENT, "a school day inside every agreement of the example set"
    elif at is None:
        at, why = pick_moment(policy, local_day(datetime.datetime.now(policy.zone), policy.zone))
    today = local_day(at, policy.zone)
    place = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="avgpolicy-demo-"))
    place.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress.write(f"\r\033[K  generating {students} students")
        progress.flush()
    body = generate_students(policy, students, seed=seed, today=today)
    log, why_not = open_log(policy, place)
    results, decide_seconds, send_seconds = run_feeds(policy, body, at, progress, log)
    if log is not None:
        if progress is not None:
            progress.write("\r\033[K  the export log, the dashboard and an art. 15 answer")
            progress.flush()
        # the log records when each export was really made, so the dashboard and the art. 15 answer are
        # made as of the real day too (the decisions were taken as of `at`, which may be another day)
        made = local_day(datetime.datetime.now(policy.zone), policy.zone)
        recorded = record_and_report(policy, log, body, results, at, place, made)
        log.close()
    else:
        recorded = Recorded(folder=place, why_not=why_not)
    if progress is not None and bulk:
        progress.write("\r\033[K  a bulk feed inside DuckDB")
        progress.flush()
    bulk_result = bulk_feed(policy, body, results, at, place) if bulk else None
    if progress is not None:
        progress.write("\r\033[K")
        progress.flush()
    report = run(policy)
    subject = policy.model.catalogue.subject_fields
    left = policy.model.catalogue.left
    demo = DemoResult(
        students=len(body), schools=Counter(s["school"] for s in body if type(s.get("school")) is str),
        bad_records=sum(1 for s in body if not all(_fits(s.get(k), fi.type) for k, fi in subject.items()
                                                   if k != left)),
        inactive=sum(1 for s in body if s.get("actief") is False),
        over_16=sum(1 for s in body if (a := _age(s.get("geboortedatum"), today)) is not None and a >= 16),
        feeds=results, decide_seconds=decide_seconds, filter_seconds=send_seconds,
        tests_passed=len(report.results) - len(report.failures), tests_failed=len(report.failures),
        moment_reason=why, recorded=recorded, bulk=bulk_result,
        left=sum(1 for s in body if left is not None and type(s.get(left)) is datetime.date and s[left] < today))
    if out is not None:
        out.write(render(demo, policy, at))
    return demo


_TRANSFORM_WORDS = {"pseudonym": "as a pseudonym", "year": "only the year"}


def _field_words(model: Any, partner: str, purpose: str, ref: str, subject: str) -> str:
    """A field as the summary names it: the student's own by name, others as dataset.field, with the
    transform the permits apply ("id (as a pseudonym)"), so nobody reads that the raw value goes out."""
    from .runtime import covers

    name = ref.split(".", 1)[1] if ref.startswith(subject + ".") else ref
    transforms = {r.grant_for(ref).transform for r in model.rules  # type: ignore[union-attr]
                  if r.effect == "permit" and covers(r, partner, purpose, ref)}
    words = [_TRANSFORM_WORDS[t] for t in sorted(t for t in transforms if t)]
    if not words:
        return name
    return f"{name} ({', '.join(words)}{' for some' if None in transforms else ''})"


def plain_summary(demo: DemoResult, policy: Policy) -> list[str]:
    """Which partner gets which data about how many students, and why not the others: in words."""
    m = policy.model
    lines = ["What goes where:"]
    for r in demo.feeds:
        partner = m.partners[r.feed.partner]
        purpose = m.purposes[r.feed.purpose]
        who = f"{partner.title} ({partner.name})" if partner.title else partner.name
        why = f"{purpose.title} ({purpose.name})" if purpose.title else purpose.name
        if not r.students_shared:
            lines.append(f"  {who} receives nothing for {why}.")
        else:
            subject = m.catalogue.subject  # the student's own fields by name, other datasets' as dataset.field
            names = ", ".join(sorted(_field_words(m, r.feed.partner, r.feed.purpose, f, subject)
                                     for f in r.fields_shared))
            lines.append(f"  {who} receives {names} about {r.students_shared:,} of {demo.students:,} students, "
                         f"for {why}.")
        others = demo.students - r.students_shared
        if others and r.left_out:
            because = ", ".join(f"{PLAIN_REASONS.get(code, code)} ({count:,})"
                                for code, count in r.left_out.most_common())
            lines.append(f"    Not about the other {others:,}: {because}.")
    return lines


def render(demo: DemoResult, policy: Policy, at: Any) -> str:
    m = policy.model
    moment = at.isoformat(sep=" ") if isinstance(at, datetime.datetime) else str(at)
    lines = [
        f"avgpolicy demo: policy {policy.version}, {len(policy.sources)} files, {len(m.rules)} rules, "
        f"{len(m.partners)} partners; {demo.tests_passed} test blocks pass, {demo.tests_failed} fail",
        f"{demo.students} synthetic students"
        + (" (" + ", ".join(f"school {k}: {v}" for k, v in sorted(demo.schools.items())) + ")"
           if demo.schools else "")
        + f"; {demo.left} left the school, {demo.over_16} aged 16 or over, "
        f"{demo.bad_records} with a missing or ill-typed value",
        f"feeds at {moment} ({policy.timezone}): {demo.moment_reason}",
        "",
        *plain_summary(demo, policy),
        "",
        "For developers:",
        f"{'partner':<15} {'purpose':<21} {'students':>9} {'fields':>7} {'values':>8}  top denial reasons",
    ]
    for r in demo.feeds:
        top = ", ".join(f"{code} {n}" for code, n in r.denials.most_common(3))
        fields = f"{len(r.fields_shared)}/{len(r.feed.fields)}"
        lines.append(f"{r.feed.partner:<15} {r.feed.purpose:<21} {r.students_shared:>9} {fields:>7} "
                     f"{r.values_shared:>8}  {top}")
    lines += ["", "students: with at least one field shared; fields: shared/requested; values: field values sent",
              "", "denied field decisions by reason (a field may have several):"]
    for code, count in demo.denials.most_common():
        lines.append(f"  {code:<20} {count:>9}")
    informed = sum(f.informed for f in demo.feeds)
    if informed:
        lines.append(f"allowed on a parent's consent after the 16th birthday (inform_student): {informed}")
    rate = demo.decisions / demo.decide_seconds if demo.decide_seconds else float("inf")
    sent = "through the export log (filter and a SQLite record per feed)" \
        if demo.recorded is not None and demo.recorded.log_path is not None else "with filter"
    lines += ["", f"{demo.decisions} decisions in {demo.decide_seconds:.2f} s: {rate:,.0f} decisions/s (compiled); "
              f"the feeds sent {sent} in {demo.filter_seconds:.2f} s"]
    if demo.bulk is not None:
        lines += bulk_summary(demo.bulk, demo.students)
    lines += ["", *recorded_summary(demo.recorded), ""]
    return "\n".join(lines)


def bulk_summary(bulk: BulkFeed, students: int) -> list[str]:
    """The DuckDB feed, for developers: rows and time beside filter, or why it did not run."""
    if bulk.feed is None:
        return [f"bulk feed inside DuckDB (policy.plan(...).run): skipped: {bulk.note}"]
    same = "the same rows as filter" if bulk.same else "**NOT the same rows as filter** (please report this)"
    return [f"bulk feed inside DuckDB (policy.plan(...).run): {bulk.feed.partner} / {bulk.feed.purpose} over a table "
            f"of {students:,} students: {len(bulk.rows):,} rows in {bulk.plan_seconds * 1e3:.0f} ms (planned and run), "
            f"filter {bulk.filter_seconds * 1e3:.0f} ms over the same students in memory; {same}",
            f"  (the table was loaded from students.jsonl in {bulk.load_seconds * 1e3:.0f} ms; a SIS whose students "
            "are in a database would first fetch them for filter: docs/sql.md)"]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def recorded_summary(recorded: Recorded | None) -> list[str]:
    """What the school can show from the export log: the log, the dashboard, one art. 15 answer."""
    if recorded is None:
        return []
    if recorded.log_path is None:
        return [f"No export log: {recorded.why_not}."]
    by_hand = f" and {_count(recorded.manual, 'export')} by hand ({recorded.staff})" if recorded.manual else ""
    verified = "the log verifies: no record was changed, removed or reordered" if recorded.verified else \
        "**the log does not verify**: run avgpolicy exports verify on it"
    lines = ["What the school can show:",
             f"  {_count(recorded.exports, 'export')} recorded in {recorded.log_path}: "
             f"{_count(recorded.exports - recorded.manual, 'nightly feed')}{by_hand}; {verified}. (The log holds "
             "when each export was really made; the "
             "decisions were taken as of the moment of the feeds above.)",
             f"  The dashboard for the privacy officer: {recorded.dashboard}"]
    access = recorded.access
    if access is None:
        return [*lines, "", "No student's data was sent, so there is no art. 15 answer to show."]
    lines += ["", f"A parent asks which organisations received data about their child (GDPR art. 15(1)(c)); "
                  f"for student {recorded.student}:"]
    for e in sorted(access["exports"], key=lambda e: (e["organisation"], e["purpose"])):
        grounds = [*e["basis"], *(law for law in e["law"] if law != access["labels"]["no_law"])]
        agreement = "; ".join(e["agreement"])
        lines.append(f"  - {e['organisation']}, {e['when']}, for {e['purpose']}: {'; '.join(grounds)}; "
                     f"agreement: {agreement}; {e['how']}.")
        lines.append(f"      {'; '.join(e['data'])}")
    lines.append(f"  The whole answer to hand to the parent: {recorded.access_path} (in Dutch: avgpolicy access "
                 f"{recorded.log_path} --student {recorded.student} --lang nl)")
    return lines
