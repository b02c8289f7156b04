"""The export log on the command line: exports, exports verify, access (art. 15), dashboard.

Every output is searched for the planted field values: none may ever show (only keys do).
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from avgpolicy.cli import main
from avgpolicy.exports import ExportLog
from avgpolicy.exports.access import build_access, render_access
from avgpolicy.exports.dashboard import build_dashboard, render_dashboard
from tests.exports_support import AT, FIELDS, POLICY_TEXT, planted_needles, planted_students, policy

TODAY = datetime.date(2026, 3, 2)


@pytest.fixture
def school(tmp_path: Path) -> dict[str, Any]:
    """A log with a nightly feed, two staff downloads, an aborted and an unfinished export."""
    path = tmp_path / "exports.sqlite"
    (tmp_path / "policy.avg").write_text(POLICY_TEXT, encoding="utf-8")
    log = ExportLog(path)
    pol = policy(export_log=log)
    students = planted_students(40)
    for actor, channel in (("nightly", "nightly-feed"), ("j.devries", "manual"), ("a.bakker", "manual")):
        with pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor=actor, channel=channel) as export:
            list(export.rows(students))
    with pytest.raises(OSError), pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="nightly",
                                            channel="nightly-feed") as export:
        for row in export.rows(students):
            raise OSError(f"network down while sending {row}")
    killed = pol.export("snappet", "leermiddelen", FIELDS, at=AT, actor="nightly", channel="nightly-feed")
    killed.__enter__()  # never left: what a killed process leaves
    return {"path": path, "log": log, "policy": pol, "students": students, "dir": tmp_path,
            "unfinished": killed.id}


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_no_values(text: str, students: list[dict[str, Any]]) -> None:
    for needle in planted_needles(students):
        assert needle not in text, needle


def test_exports_table_json_csv(school: dict[str, Any], capsys: Any) -> None:
    path = str(school["path"])
    code, out, _ = run(capsys, "exports", path)
    assert 0 == code
    assert 5 == sum(1 for line in out.splitlines() if re.match(r"[0-9A-Z]{26}  ", line))
    assert "5 exports (times UTC); 1 unfinished" in out
    assert school["unfinished"] in out and "started" in out
    code, out, _ = run(capsys, "exports", path, "--format", "json", "--channel", "manual")
    data = json.loads(out)
    assert ["a.bakker", "j.devries"] == sorted(r["actor"] for r in data)
    assert {"L3", "L39"} <= set(data[0]["keys"])
    code, out, _ = run(capsys, "exports", path, "--format", "csv", "--actor", "nightly")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert ["completed", "aborted", "started"] == [r["status"] for r in rows]
    assert "OSError" not in out and "network down" not in out
    code, out, _ = run(capsys, "exports", path, "--partner", "malmberg")
    assert "0 exports (times UTC)" in out
    code, out, _ = run(capsys, "exports", path, "--since", "2999-01-01")
    assert "0 exports" in out


def test_exports_verify(school: dict[str, Any], capsys: Any) -> None:
    path = str(school["path"])
    code, out, _ = run(capsys, "exports", "verify", path)
    assert 0 == code
    assert f"unfinished {school['unfinished']}" in out
    assert "chain intact, 1 unfinished" in out
    conn = sqlite3.connect(path)
    with conn:
        victim = conn.execute("SELECT id FROM avgpolicy_exports WHERE seq = 2").fetchone()[0]
        conn.execute("UPDATE avgpolicy_exports SET keys = '[]' WHERE seq = 2")
    conn.close()
    code, out, _ = run(capsys, "exports", "verify", path)
    assert 1 == code
    assert f"edited {victim}" in out
    code, out, _ = run(capsys, "exports", "verify", path, "--format", "json")
    assert 1 == code
    assert [["edited", victim]] == [[p["kind"], p["id"]] for p in json.loads(out)["problems"]
                                    if p["kind"] != "unfinished"]


def test_usage_errors(tmp_path: Path, capsys: Any) -> None:
    missing = str(tmp_path / "nope.sqlite")
    assert 2 == run(capsys, "exports", missing)[0]
    assert not Path(missing).exists()  # reading never creates a log
    assert 2 == run(capsys, "exports", "verify", missing)[0]
    assert 2 == run(capsys, "access", missing, "--student", "L1")[0]
    assert 2 == run(capsys, "exports", "a", "b", "c")[0]


def test_access_report_in_plain_words(school: dict[str, Any], capsys: Any) -> None:
    path = str(school["path"])
    code, out, _ = run(capsys, "access", path, "--student", "L5")
    assert 0 == code
    assert "# Which organisations received data about student L5" in out
    assert "Snappet B.V." in out  # the organisation, not the policy's identifier
    assert "Levering en gebruik van digitaal leermateriaal" in out  # the purpose in words
    assert "necessary for a contract (GDPR art. 6(1)(b))" in out
    assert "leerjaar" in out and "as a pseudonym" in out
    assert "downloaded by a staff member" in out and "sent automatically (nightly-feed)" in out
    assert "may have been sent in part" not in out  # the aborted export stopped at its first student, L2
    assert "may have included this student" in out  # the unfinished one
    assert re.search(r"- Snappet B\.V\.: 3 time\(s\), last on \d{4}-\d\d-\d\d", out)
    code, out, _ = run(capsys, "access", path, "--student", "L2")
    assert "may have been sent in part" in out
    assert re.search(r"- Snappet B\.V\.: 4 time\(s\)", out)
    code, out, _ = run(capsys, "access", path, "--student", "L5", "--lang", "nl")
    assert "Welke organisaties gegevens over leerling L5 ontvingen" in out
    assert "noodzakelijk voor een overeenkomst" in out
    code, out, _ = run(capsys, "access", path, "--student", "L1")  # leerjaar 2: never sent
    assert "The log holds no export that included this student." in out
    code, out, _ = run(capsys, "access", path, "--student", "L5", "--format", "json")
    data = json.loads(out)
    assert 3 == len(data["exports"])
    assert {"Snappet B.V."} == {e["organisation"] for e in data["exports"]}


def test_access_names_the_agreement(school: dict[str, Any]) -> None:
    """The grant's agreement when the engine gives it, else the partner's agreements in force then."""
    data = build_access(school["log"], "L5")
    assert {"VO4-2025-031"} == {a for e in data["exports"] for a in e["agreement"]}
    [record] = school["log"].exports(channel="manual", actor="j.devries")
    assert ("VO4-2025-031",) == record.agreements_in_force


def test_a_consent_basis_names_its_topic_in_words() -> None:
    from avgpolicy.exports.access import _basis_words

    assert "consent (GDPR art. 6(1)(a)), for beeldmateriaal" == _basis_words("consent(beeldmateriaal)", "en")
    assert "toestemming (AVG art. 6 lid 1 onder a), voor beeldmateriaal" == _basis_words("consent(beeldmateriaal)",
                                                                                       "nl")
    assert "consent (GDPR art. 6(1)(a))" == _basis_words("consent", "en")
    assert "odd(basis" == _basis_words("odd(basis", "en")  # unknown text is kept as it is
    assert "?" == _basis_words(None, "en")


def test_dashboard(school: dict[str, Any], capsys: Any) -> None:
    out_file = school["dir"] / "dash.html"
    code, _, err = run(capsys, "dashboard", str(school["dir"] / "policy.avg"), "--log", str(school["path"]),
                       "--today", TODAY.isoformat(), "-o", str(out_file))
    assert 0 == code
    assert "dashboard written to" in err
    page = out_file.read_text(encoding="utf-8")
    data = build_dashboard(school["policy"], school["log"], today=TODAY)
    assert [school["unfinished"]] == [u["id"] for u in data["unfinished"]]
    assert [("malmberg", "VO4-2024-MALM-0877", 59)] == [(a["partner"], a["reference"], a["days_left"])
                                                       for a in data["expiring"]]
    assert {("malmberg", "rooster", True), ("snappet", "leermiddelen", False)} == {
        (n["partner"], n["purpose"], n["whole_flow"]) for n in data["never_used"]}
    assert [("a.bakker", 1, 30), ("j.devries", 1, 30)] == [(s["actor"], s["exports"], s["students"])
                                                          for s in data["staff"]]
    snappet = next(p for p in data["partners"] if p["name"] == "snappet")
    assert (4, 1, 30) == (snappet["exports"], snappet["unfinished"], snappet["students"])
    assert ["leerling.id", "leerling.leerjaar", "leerling.roepnaam"] == snappet["received"]["leermiddelen"]
    assert data["verified"]
    for text in ("Agreement VO4-2024-MALM-0877 ends in 59 days", "Unfinished export to snappet",
                 "Permitted but never used", "a.bakker", "Malmberg B.V.", "leerling.achternaam"):
        assert text in page, text


@pytest.mark.parametrize("page", ["dashboard", "access"])
def test_pages_are_self_contained(school: dict[str, Any], page: str) -> None:
    text = (render_dashboard(school["policy"], school["log"], today=TODAY) if page == "dashboard"
            else render_access(school["log"], "L5", "html"))
    lowered = text.lower()
    for forbidden in ("<script", "<link", "@import", "url(", "src=", "http://", "https://", ":hover", " title="):
        assert forbidden not in lowered, forbidden  # nothing from elsewhere, nothing only on hover
    assert '<meta name="viewport"' in text


def test_no_field_value_in_any_output(school: dict[str, Any], capsys: Any) -> None:
    path, students = str(school["path"]), school["students"]
    outputs = []
    for argv in (["exports", path], ["exports", path, "--format", "json"], ["exports", path, "--format", "csv"],
                 ["exports", "verify", path], ["exports", "verify", path, "--format", "json"],
                 *(["access", path, "--student", k, "--format", f, "--lang", lang]
                   for k in ("L5", "L7") for f in ("md", "json", "html") for lang in ("en", "nl")),
                 ["dashboard", str(school["dir"] / "policy.avg"), "--log", path, "-o", "-"]):
        code, out, err = run(capsys, *argv)
        assert 0 == code, argv
        outputs.append(out + err)
    assert_no_values("\n".join(outputs), students)
    assert "L5" in "\n".join(outputs)  # keys do show: the search would find a value
    blob = b"".join(p.read_bytes() for p in school["dir"].glob("exports.sqlite*"))
    for needle in planted_needles(students):
        assert needle.encode() not in blob, needle
