"""Register: the processing-register overview in md, csv, json and html, and conditions in words."""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import avgpolicy
from avgpolicy import nodes as n
from avgpolicy import register
from avgpolicy.register import build_register, condition_text, render

POLICIES = Path(__file__).resolve().parent.parent / "policies"
TODAY = datetime.date(2026, 11, 25)


@pytest.fixture(scope="module")
def policy() -> avgpolicy.Policy:
    return avgpolicy.load(POLICIES)


@pytest.fixture(scope="module")
def reg(policy: avgpolicy.Policy) -> dict:
    return build_register(policy, today=TODAY)


def _partner(reg: dict, name: str) -> dict:
    return next(p for p in reg["partners"] if p["name"] == name)


# ---------------------------------------------------------------------------
# the data

def test_every_partner_is_listed(policy: avgpolicy.Policy, reg: dict) -> None:
    assert sorted(policy.model.partners) == [p["name"] for p in reg["partners"]]
    assert len(policy.model.partners) == reg["summary"]["partners"]
    assert "2026-11-25" == reg["today"]
    assert policy.version == reg["policy_version"]


def test_agreement_days_until_expiry_and_status(reg: dict) -> None:
    noordhoff = _partner(reg, "noordhoff")["agreements"][0]
    assert (36, "expiring") == (noordhoff["days_until_expiry"], noordhoff["status"])
    zermelo = _partner(reg, "zermelo")
    assert ["expired", "active"] == [a["status"] for a in zermelo["agreements"]]
    assert [{"from": "2026-01-01", "until": "2026-01-31"}] == zermelo["gaps"]
    website = _partner(reg, "schoolwebsite")["agreements"][0]
    assert (None, "active") == (website["days_until_expiry"], website["status"])
    assert "no agreement required" == _partner(reg, "duo")["agreement_status"]
    expiring = {e["partner"] for e in reg["summary"]["expiring_agreements"]}
    assert {"noordhoff", "socialschools"} == expiring


def test_today_moves_the_status(policy: avgpolicy.Policy) -> None:
    later = build_register(policy, today=datetime.date(2027, 1, 15))
    noordhoff = _partner(later, "noordhoff")
    assert ("expired", -15) == (noordhoff["agreements"][0]["status"], noordhoff["agreements"][0]["days_until_expiry"])
    assert "no valid agreement" == noordhoff["agreement_status"]
    assert "noordhoff" in later["summary"]["partners_without_valid_agreement"]
    gap = build_register(policy, today=datetime.date(2026, 1, 15))
    assert "no valid agreement" == _partner(gap, "zermelo")["agreement_status"]


def test_flows_carry_purpose_basis_students_transform_retention(reg: dict) -> None:
    snappet = _partner(reg, "snappet")["flows"][0]
    assert "snappet_rekenen_taal" == snappet["rule"]
    assert ["leermiddelen"] == snappet["purposes"]
    assert "public_task" == snappet["basis"]
    assert "school is 12AB and (leerjaar 3 to 8 or lesgroepen includes plusklas)" == snappet["students"]
    assert "6 months" == snappet["retain"]
    transforms = {f["ref"]: f["transform"] for f in snappet["fields"]}
    assert "pseudonym" == transforms["leerling.id"]
    assert None is transforms["leerling.eckid"]
    assert snappet["location"].endswith("rules/leermiddelen.avg:7")

    research = _partner(reg, "uu_onderzoek")["flows"][0]
    assert "deelname_onderzoek" == research["consent_topic"]
    assert "year" == {f["ref"]: f["transform"] for f in research["fields"]}["leerling.geboortedatum"]


def test_special_and_bsn_are_marked(reg: dict) -> None:
    swv = _partner(reg, "swv")
    assert swv["special"] and swv["national_id"]
    fields = {f["ref"]: f for fl in swv["flows"] for f in fl["fields"]}
    assert ("BSN", True) == (fields["leerling.bsn"]["marker"], fields["leerling.bsn"]["national_id"])
    assert ("art. 9", True) == (fields["leerling.zorgnotitie"]["marker"], fields["leerling.zorgnotitie"]["special"])
    assert "substantial_public_interest" == swv["flows"][0]["art9"]
    snappet = _partner(reg, "snappet")
    assert not snappet["special"] and not snappet["national_id"]
    assert reg["summary"]["national_id_flows"] == sum(
        1 for p in reg["partners"] for f in p["flows"] if f["national_id"])


def test_forbids_listed_per_partner_only_where_they_can_apply(reg: dict) -> None:
    def names(partner: str) -> set[str]:
        return {r["rule"] for r in _partner(reg, partner)["restrictions"]}

    assert "geen_resultaten_publiceren" in names("parro")        # parro has a `publicatie` flow
    assert "geen_resultaten_publiceren" not in names("zermelo")  # zermelo only `rooster`
    assert {"niets_na_uitschrijving"} == names("swv")            # excepted from the other two


def test_matrix_partner_by_dataset(reg: dict) -> None:
    assert ["leerling", "lesgroep", "medewerker", "rooster", "toets", "absentie"] == reg["matrix"]["datasets"]
    rows = {r["partner"]: r["cells"] for r in reg["matrix"]["rows"]}
    assert ["BSN", "art. 9"] == rows["swv"]["leerling"]["markers"]
    assert ["art. 9"] == rows["ggd"]["absentie"]["markers"]
    assert 0 == rows["snappet"]["toets"]["count"]
    assert {"code", "naam", "vak"} == set(rows["malmberg"]["lesgroep"]["fields"])


def test_unconditional_forbid_blocks_a_field_in_the_register() -> None:
    policy = avgpolicy.loads("""
        dataset leerling subject { id text personal  bsn text national_id  roepnaam text personal }
        partner uitgever { role controller  kind school }
        purpose leren
        permit alles { partner uitgever  purpose leren  basis public_task("WVO 2020")  fields leerling.{id, roepnaam} }
        forbid geen_namen { partner uitgever  fields leerling.roepnaam }
    """)
    reg = build_register(policy, today=TODAY)
    fields = {f["ref"]: f["blocked_by"] for f in reg["partners"][0]["flows"][0]["fields"]}
    assert {"leerling.id": [], "leerling.roepnaam": ["geen_namen"]} == fields
    assert {"leerling": ["id"]} == reg["partners"][0]["datasets"]


# ---------------------------------------------------------------------------
# conditions in words

def _condition(text: str) -> str:
    policy = avgpolicy.loads(f"""
        dataset leerling subject {{
            geboortedatum date personal  school text personal  leerjaar int personal
            lesgroepen set personal  actief bool personal  start date personal
        }}
        partner p {{ role controller }}
        purpose u
        permit r {{ partner p  purpose u  basis public_task("WVO 2020")  fields leerling.school
                    students where {text} }}
    """)
    return condition_text(policy.model.rules[0].condition)


@pytest.mark.parametrize(("source", "words"), [
    ('school == "12AB" and leerjaar in 3..8', "school is 12AB and leerjaar 3 to 8"),
    ('school in ["12AB", "34CD"]', "school is 12AB or 34CD"),
    ('school not in ["12AB", "34CD", "56EF"]', "school is none of 12AB, 34CD and 56EF"),
    ("not age >= 16", "age is below 16"),
    ("3 <= leerjaar", "leerjaar is at least 3"),
    ("leerjaar != 4", "leerjaar is not 4"),
    ("actief == true", "actief"),
    ("actief == false", "not actief"),
    ("not actief == true", "not actief"),
    ('"plusklas" in lesgroepen', "lesgroepen includes plusklas"),
    ('"plusklas" not in lesgroepen', "lesgroepen does not include plusklas"),
    ('not "plusklas" in lesgroepen', "lesgroepen does not include plusklas"),
    ("leerjaar not in 1..2", "leerjaar outside 1 to 2"),
    ("start in 2025-08-01..2026-07-31", "start 2025-08-01 to 2026-07-31"),
    ('(leerjaar < 3 or leerjaar > 6) and school == "12AB"',
     "(leerjaar is below 3 or leerjaar is above 6) and school is 12AB"),
    ('leerjaar <= 2 or school == "12AB" and actief == true',
     "leerjaar is at most 2 or (school is 12AB and actief)"),
    ('not (school == "12AB" or leerjaar == 1)', "not (school is 12AB or leerjaar is 1)"),
])
def test_condition_text(source: str, words: str) -> None:
    assert words == _condition(source)


def test_no_condition_is_all_students() -> None:
    assert "all students" == condition_text(None)


# ---------------------------------------------------------------------------
# the formats

def test_unknown_format_is_a_value_error(policy: avgpolicy.Policy) -> None:
    with pytest.raises(ValueError, match="md, csv, json, html"):
        render(policy, "pdf", today=TODAY)


def test_today_must_be_a_date(policy: avgpolicy.Policy) -> None:
    with pytest.raises(TypeError):
        build_register(policy, today="2026-11-25")  # type: ignore[arg-type]


def test_json_round_trips(policy: avgpolicy.Policy, reg: dict) -> None:
    text = render(policy, "json", today=TODAY)
    assert reg == json.loads(text)


def test_markdown_names_partners_fields_and_markers(policy: avgpolicy.Policy) -> None:
    text = render(policy, "md", today=TODAY)
    assert text.startswith("# Processing register")
    for partner in policy.model.partners:
        assert f"### {partner}" in text
    assert "`bsn` **[BSN]**" in text
    assert "`zorgnotitie` **[art. 9]**" in text
    assert "`id as pseudonym`" in text
    assert "`geboortedatum as year`" in text
    assert "**gap**: no agreement from 2026-01-01 to 2026-01-31" in text
    assert "ends 2026-12-31 (36 days)" in text
    assert "school is 12AB and leerjaar 3 to 8" in text
    assert "## Partner × dataset" in text
    # a forbid over whole datasets is shown grouped, not as 60 separate fields
    assert "`leerling.*, lesgroep.*, rooster.*, toets.*, absentie.*` to all partners except duo" in text


def test_csv_parses_with_one_row_per_partner_rule_field(policy: avgpolicy.Policy, reg: dict) -> None:
    rows = list(csv.DictReader(io.StringIO(render(policy, "csv", today=TODAY))))
    expected = sum(len(fl["fields"]) for p in reg["partners"] for fl in p["flows"])
    assert expected == len(rows)
    assert list(register.CSV_COLUMNS) == list(rows[0])
    bsn = {(r["partner"], r["rule"]) for r in rows if r["field"] == "bsn"}
    assert {("duo", "duo_bekostiging"), ("duo", "duo_verzuimmelding"), ("swv", "swv_ondersteuning"),
            ("nieuwe_school", "oso_onderwijskundig_rapport")} == bsn
    assert all(r["marker"] == "BSN" for r in rows if r["field"] == "bsn")
    reden = next(r for r in rows if r["partner"] == "ggd" and r["field"] == "reden")
    assert ("art. 9", "health_care", "special") == (reden["marker"], reden["art9"], reden["sensitivity"])
    noordhoff = next(r for r in rows if r["partner"] == "noordhoff")
    assert "36" == noordhoff["next_expiry_days"]


def test_csv_quotes_hostile_text() -> None:
    policy = avgpolicy.loads("""
        dataset leerling subject { naam text personal }
        partner p "Komma, \\"quote\\" en
nieuwe regel" { role controller }
        purpose u
        permit r { partner p  purpose u  basis public_task("WVO 2020")  fields leerling.naam  note "a,b;\\"c\\"" }
    """)
    rows = list(csv.reader(io.StringIO(render(policy, "csv", today=TODAY))))
    assert 'Komma, "quote" en\nnieuwe regel' == rows[1][1]
    assert 'a,b;"c"' == rows[1][register.CSV_COLUMNS.index("note")]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_is_self_contained(policy: avgpolicy.Policy) -> None:
    page = render(policy, "html", today=TODAY)
    parsed = _Collector()
    parsed.feed(page)
    assert {"script", "link", "img", "iframe", "object", "embed"}.isdisjoint(parsed.tags)
    for name, value in parsed.attrs:
        assert name not in {"src", "srcset"}
        if name == "href":
            assert value is not None and value.startswith("#"), value
    assert re.search(r"url\(|@import|https?://", page) is None
    assert page.startswith("<!DOCTYPE html>")
    assert "<style>" in page and "@media print" in page


def test_html_shows_partners_fields_and_badges(policy: avgpolicy.Policy) -> None:
    page = render(policy, "html", today=TODAY)
    parsed = _Collector()
    parsed.feed(page)
    text = " ".join(parsed.text)
    for partner in policy.model.partners:
        assert f'id="partner-{partner}"' in page
    assert '<span class="badge b-national_id">BSN</span>' in page
    assert '<span class="badge b-special">art. 9</span>' in page
    assert "receives BSN" in text
    assert "expiring, 36 days left" in text
    assert "no valid agreement from 2026-01-01 to 2026-01-31" in " ".join(text.split())
    assert "zorgnotitie" in text


def test_html_escapes_policy_text() -> None:
    policy = avgpolicy.loads("""
        dataset leerling subject { naam text personal }
        partner p "<script>alert(1)</script> & Co" { role controller }
        purpose u "<b>doel</b>"
        permit r { partner p  purpose u  basis public_task("WVO 2020")  fields leerling.naam  note "<img src=x>" }
    """)
    page = render(policy, "html", today=TODAY)
    assert "<script>" not in page and "<img" not in page and "<b>doel" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page


def test_default_today_is_the_policy_zone_date(policy: avgpolicy.Policy) -> None:
    reg = build_register(policy)
    assert datetime.datetime.now(policy.zone).date() - datetime.date.fromisoformat(reg["today"]) \
        <= datetime.timedelta(days=1)


EDGE = """
dataset s subject { geboortedatum date personal  x text criminal  n text national_id  d set personal }
dataset leeg { }
partner a {
    agreement "A" valid until 2026-01-01
    agreement "B" valid from 2026-06-01 until 2026-07-01
    agreement "C" valid from 2026-03-01
}
partner b { role controller  kind government }
purpose u
purpose v
permit r1 { partner * purpose * except v basis public_task("WVO 2020") fields s.x dpia "D"
            students where age > 3 or not (age < 2 and "q" not in d) valid until 2027-01-01 }
permit r2 { partner b purpose v basis legal_obligation("WPO, art. 178a") fields s.n
            valid from 2026-01-01 until 2026-02-01 }
"""


def test_edge_cases_wildcards_open_windows_and_empty_sections() -> None:
    policy = avgpolicy.loads(EDGE)
    reg = build_register(policy, today=TODAY)
    a, b = reg["partners"]
    assert ["r1"] == [f["rule"] for f in a["flows"]]            # `partner *` reaches every partner
    assert ["r1", "r2"] == [f["rule"] for f in b["flows"]]
    assert "all purposes except v" == a["flows"][0]["purposes_text"]
    assert "age is above 3 or not (age is below 2 and d does not include q)" == a["flows"][0]["students"]
    assert [{"from": "2026-01-02", "until": "2026-02-28"}] == a["gaps"]   # C is open-ended: no later gap
    assert ["A", "C", "B"] == [x["reference"] for x in a["agreements"]]
    assert ("art. 10", "expired") == (a["flows"][0]["fields"][0]["marker"], b["flows"][1]["window"]["status"])
    assert {"count": 0, "fields": [], "worst": None, "markers": []} == reg["matrix"]["rows"][0]["cells"]["leeg"]
    md = render(policy, "md", today=TODAY)
    assert "1 with the BSN" in md and "1 forbid rule" not in md and "0 forbid rules" in md
    assert "## Consent topics\n\nNone declared." in md
    assert "\n### b" in md and "\n\n### b" in md
    for fmt in ("csv", "json", "html"):
        assert render(policy, fmt, today=TODAY)


def test_today_may_be_a_datetime(policy: avgpolicy.Policy) -> None:
    moment = datetime.datetime(2026, 11, 25, 23, 30)
    assert "2026-11-25" == build_register(policy, today=moment)["today"]


# ---------------------------------------------------------------------------
# property: the words keep every name and value of the condition, and brackets balance

_TEXT = st.sampled_from(["12AB", "34CD", "plusklas", "havo"])
_INT = st.integers(-5, 20)
_DATE = st.dates(datetime.date(2000, 1, 1), datetime.date(2030, 12, 31))


def _lit(value: object) -> n.Literal:
    kind = {str: "text", int: "int", bool: "bool", datetime.date: "date"}[type(value)]
    return n.Literal(value, kind)  # type: ignore[arg-type]


_ATOMS = st.one_of(
    st.builds(lambda v, op: n.Compare(op, n.Ref("school"), _lit(v)), _TEXT, st.sampled_from(["==", "!="])),
    st.builds(lambda v, op, flip: n.Compare(op, _lit(v), n.Ref("leerjaar")) if flip
              else n.Compare(op, n.Ref("leerjaar"), _lit(v)),
              _INT, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.booleans()),
    st.builds(lambda v, op: n.Compare(op, n.Ref("actief"), _lit(v)), st.booleans(), st.sampled_from(["==", "!="])),
    st.builds(lambda vs, neg: n.InList(n.Ref("school"), tuple(_lit(v) for v in vs), neg),
              st.lists(_TEXT, min_size=1, max_size=3), st.booleans()),
    st.builds(lambda lo, hi, neg: n.InRange(n.Ref("age"), _lit(lo), _lit(hi), neg), _INT, _INT, st.booleans()),
    st.builds(lambda lo, hi, neg: n.InRange(n.Ref("start"), _lit(lo), _lit(hi), neg), _DATE, _DATE, st.booleans()),
    st.builds(lambda v, neg: n.InSet(_lit(v), n.Ref("lesgroepen"), neg), _TEXT, st.booleans()),
)
_EXPRS = st.recursive(_ATOMS, lambda inner: st.one_of(
    st.builds(lambda xs: n.And(tuple(xs)), st.lists(inner, min_size=2, max_size=3)),
    st.builds(lambda xs: n.Or(tuple(xs)), st.lists(inner, min_size=2, max_size=3)),
    st.builds(n.Not, inner),
), max_leaves=12)


def _words_of(value: object) -> str:
    if isinstance(value, bool):
        return ""  # `actief == true` reads as "actief": the value becomes the wording
    return value.isoformat() if isinstance(value, datetime.date) else str(value)


@given(_EXPRS)
def test_condition_text_keeps_every_name_and_value(expr: n.Expr) -> None:
    text = condition_text(expr)
    assert text == condition_text(expr)
    for ref in expr.find_all(n.Ref):
        assert ref.name in text
    for lit in expr.find_all(n.Literal):
        assert _words_of(lit.value) in text
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        assert depth >= 0
    assert 0 == depth


# ---------------------------------------------------------------------------
# the register never under-reports: whatever the engine allows, the register lists

_EXAMPLE = avgpolicy.load(POLICIES)
_EXAMPLE_REGISTER = build_register(_EXAMPLE, today=TODAY)
_FLOWS = sorted((p["name"], u) for p in _EXAMPLE_REGISTER["partners"] for fl in p["flows"] for u in fl["purposes"])
_ALL_FIELDS = sorted(_EXAMPLE.model.catalogue.fields)


def _engine_basis(flow: dict) -> str:
    return f"consent({flow['consent_topic']})" if flow["consent_topic"] else flow["basis"]


def _assert_listed(partner: str, purpose: str, decision: avgpolicy.Decision) -> int:
    listed = {(fl["rule"], f["ref"]): (_engine_basis(fl), f["transform"], fl["retain"])
              for fl in _partner(_EXAMPLE_REGISTER, partner)["flows"] if purpose in fl["purposes"]
              for f in fl["fields"] if not f["blocked_by"]}
    allowed = 0
    for ref, fd in decision.fields.items():
        if fd.allowed:
            allowed += 1
            assert (fd.basis, fd.transform, fd.retain) == listed[(fd.rule, ref)]
    return allowed


def test_register_lists_everything_allowed_to_the_test_block_students() -> None:
    from avgpolicy.testing import request_for

    allowed = 0
    for test in _EXAMPLE.model.tests:
        request = request_for(test, _EXAMPLE)
        for partner, purpose in _FLOWS:
            decision = _EXAMPLE.decide(partner=partner, purpose=purpose, fields=_ALL_FIELDS,
                                       student=request["student"], at=request["at"])
            allowed += _assert_listed(partner, purpose, decision)
    assert allowed > 500  # the check saw many allowed fields, consent-based ones included


@st.composite
def _requests(draw: st.DrawFn) -> dict:
    """Random students and moments; every field at once, so the 17 compiled requests stay cached."""
    from avgpolicy.testing import strategies

    partner, purpose = draw(st.sampled_from(_FLOWS))
    return {"partner": partner, "purpose": purpose, "fields": _ALL_FIELDS,
            "student": draw(strategies.students(_EXAMPLE)), "at": draw(strategies.moments(_EXAMPLE))}


# generating a full student record is the slow part: a quarter of the profile's examples
@settings(max_examples=max(25, settings.default.max_examples // 4))
@given(_requests())
def test_everything_the_engine_allows_is_in_the_register(request: dict) -> None:
    decision = _EXAMPLE.decide(**request)
    _assert_listed(request["partner"], request["purpose"], decision)


# ---------------------------------------------------------------------------
# hostile and extreme input (issue 15 items 7 and 11)

def test_agreement_until_the_last_representable_day_then_another_does_not_overflow() -> None:
    policy = avgpolicy.loads("""
        dataset leerling subject { id text personal }
        partner p {
            agreement "A" valid from 2020-01-01 until 9999-12-31
            agreement "B" valid from 2021-01-01 until 2022-01-01
            agreement "C" valid from 2023-01-01
        }
        purpose u
        permit r { partner p  purpose u  basis contract  fields leerling.id }
    """)
    reg = build_register(policy, today=TODAY)
    assert [] == reg["partners"][0]["gaps"]
    assert ("active", (datetime.date.max - TODAY).days) == (reg["partners"][0]["agreements"][0]["status"],
                                   reg["partners"][0]["agreements"][0]["days_until_expiry"])
    for fmt in register.FORMATS:
        assert render(policy, fmt, today=TODAY)


def test_cli_register_on_an_agreement_until_9999_12_31(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avgpolicy.cli import main

    (tmp_path / "p.avg").write_text("""
        dataset leerling subject { id text personal }
        partner p {
            agreement "A" valid until 9999-12-31
            agreement "B" valid from 2021-01-01 until 2022-01-01
        }
        purpose u
        permit r { partner p  purpose u  basis contract  fields leerling.id }
    """, encoding="utf-8")
    assert 0 == main(["register", str(tmp_path), "--today", "2026-11-25"])
    assert "9999-12-31" in capsys.readouterr().out


HOSTILE = '''
    dataset leerling subject { naam text personal  school text personal }
    partner p "Titel\n# Kop uit een titel\n<script>alert(1)</script>" {
        agreement "REF`|`x" valid from 2025-01-01
    }
    purpose u "Doel <img src=x onerror=alert(1)>\r\n* lijst"
    consent c "=cmd|' /C calc'!A0\n## kop"
    permit r {
        partner p  purpose u  basis public_task("WVO 2020")  fields leerling.naam
        students where school == "<b>12AB</b>\n# kop"
        note "eerste regel\n# Kop uit een notitie\n<script>alert(2)</script> | [link](javascript:x) **vet**"
    }
    forbid f { partner p  fields leerling.school  note "@SUM(1+1)*cmd|' /C calc'!A0\u2028## kop" }
'''


def test_markdown_escapes_html_and_line_breaks_from_policy_text() -> None:
    text = render(avgpolicy.loads(HOSTILE), "md", today=TODAY)
    assert "<script" not in text and "<img" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert ["# Processing register", "## Controller", "## Partners", "### p — Titel \\# Kop uit een titel "
            "&lt;script&gt;alert(1)&lt;/script&gt;", "## Partner × dataset", "## Never shared (forbid rules)",
            "## Consent topics", "## Purposes", "## Catalogue"] == headings
    assert all(not line.startswith(("* lijst", "<")) for line in text.splitlines())
    assert "\u2028" not in text and "\r" not in text
    # a link or emphasis in a note stays literal text
    assert "\\[link\\](javascript:x) \\*\\*vet\\*\\*" in text
    # the agreement reference keeps its backticks inside a longer code fence, its pipes escaped
    assert "``REF`\\|`x``" in text
    # every table row still has exactly its columns
    for line in text.splitlines():
        if line.startswith("| `r`"):
            assert 9 == len(re.findall(r"(?<!\\)\|", line)), line


def test_csv_neutralises_spreadsheet_formulas() -> None:
    policy = avgpolicy.loads(HOSTILE.replace('note "eerste', 'note "=HYPERLINK(\\"http://x\\")  eerste')
                             .replace('"Titel', '"+Titel').replace("permit r {", "permit r {  retain 1 year"))
    rows = list(csv.reader(io.StringIO(render(policy, "csv", today=TODAY))))
    cells = [cell for row in rows[1:] for cell in row]
    assert cells
    for cell in cells:
        assert not cell.lstrip(" ").startswith(("=", "+", "-", "@")), cell
    note = rows[1][register.CSV_COLUMNS.index("note")]
    assert note.startswith("'=HYPERLINK(\"http://x\")")
    assert "'+Titel" == rows[1][register.CSV_COLUMNS.index("partner_title")].split("\n")[0]
    # ordinary text and numbers are untouched
    assert "p" == rows[1][0]
    assert "1 year" == rows[1][register.CSV_COLUMNS.index("retain")]


def test_csv_cell_keeps_numbers_and_plain_text() -> None:
    assert 36 == register._csv_cell(36)
    assert "leerling" == register._csv_cell("leerling")
    assert "'-1" == register._csv_cell("-1")
    assert "'  @x" == register._csv_cell("  @x")


# ---------------------------------------------------------------------------
# the HTML register reads right (issue 16 item 12; the layout itself: tests/test_register_browser.py)

def _section(page: str, partner: str) -> str:
    start = page.index(f'<section class="partner" id="partner-{partner}">')
    return page[start:page.index("</section>", start)]


def test_partner_badge_agrees_with_an_expiring_agreement(policy: avgpolicy.Policy) -> None:
    page = render(policy, "html", today=TODAY)
    noordhoff = _section(page, "noordhoff")
    assert "agreement valid" not in noordhoff
    assert '<span class="badge s-expiring">agreement expiring, 36 days left</span>' in noordhoff
    assert ("2026-12-31", 36) == (_partner(build_register(policy, today=TODAY), "noordhoff")["covered_until"],
                                  _partner(build_register(policy, today=TODAY), "noordhoff")["coverage_days_left"])
    assert '<span class="badge s-active">agreement valid until 2027-07-31</span>' in _section(page, "snappet")
    assert "agreement valid, no end date" in _section(page, "schoolwebsite")


def test_window_is_bounded_by_the_agreements(policy: avgpolicy.Policy, reg: dict) -> None:
    noordhoff = _partner(reg, "noordhoff")["flows"][0]["window"]
    assert ("always", "2022-08-01 to 2026-12-31", "expiring", 36, True) == (
        noordhoff["text"], noordhoff["effective_text"], noordhoff["status"], noordhoff["days_until_end"],
        noordhoff["bounded_by_agreements"])
    zermelo = _partner(reg, "zermelo")["flows"][0]["window"]
    assert "2022-08-01 to 2025-12-31; 2026-02-01 to 2029-07-31" == zermelo["effective_text"]
    cito = _partner(reg, "cito")["flows"][0]["window"]       # the rule's own window lies inside the agreement
    assert ("2025-09-01 to 2028-07-31", False) == (cito["effective_text"], cito["bounded_by_agreements"])
    duo = _partner(reg, "duo")["flows"][0]["window"]         # no agreements: the rule's window alone
    assert "2024-08-01 to 2028-07-31" == duo["effective_text"]
    page = render(policy, "html", today=TODAY)
    row = _section(page, "noordhoff")
    assert 'data-label="Window">2022-08-01 to<br>2026-12-31 <span class="badge s-expiring">' in row
    md = render(policy, "md", today=TODAY)
    line = next(x for x in md.splitlines() if x.startswith("| `noordhoff_wiskunde`"))
    assert "| 2022-08-01 to 2026-12-31 (expiring); within the agreements (rule: always) |" in line


def test_a_rule_outside_every_agreement_never_takes_effect() -> None:
    policy = avgpolicy.loads("""
        dataset leerling subject { id text personal }
        partner p { agreement "A" valid from 2025-01-01 until 2025-12-31 }
        purpose u
        permit r { partner p  purpose u  basis contract  fields leerling.id  valid from 2026-01-01 }
    """)
    window = build_register(policy, today=TODAY)["partners"][0]["flows"][0]["window"]
    assert ([], "never (outside every agreement)", "never") == (
        window["effective"], window["effective_text"], window["status"])
    assert "never (outside every agreement)" in render(policy, "html", today=TODAY)


def test_consent_rule_stands_beside_each_consent_flow(policy: avgpolicy.Policy, reg: dict) -> None:
    assert register.CONSENT_RULE == _partner(reg, "parro")["flows"][0]["consent_rule"]
    assert register.CONSENT_RULE_RECONFIRM == _partner(reg, "uu_onderzoek")["flows"][0]["consent_rule"]
    assert None is _partner(reg, "snappet")["flows"][0]["consent_rule"]
    page = render(policy, "html", today=TODAY)
    parro = _section(page, "parro")
    row = parro[parro.index("<tr><td data-label=\"Rule\"><code>parro_fotos"):]
    row = row[:row.index("</tr>")]
    assert "<b>Who consents:</b> under 16 a parent or guardian consents, from 16 the student (UAVG art. 5)" in row
    md = render(policy, "md", today=TODAY)
    line = next(x for x in md.splitlines() if x.startswith("| `uu_leesmotivatie`"))
    assert "who consents: under 16 a parent or guardian consents" in line and "(reconfirm_at_16)" in line


def test_matrix_names_fields_in_the_cell_not_on_hover(policy: avgpolicy.Policy) -> None:
    page = render(policy, "html", today=TODAY)
    matrix = page[page.index('<table class="matrix stack">'):]
    matrix = matrix[:matrix.index("</table>")]
    assert "title=" not in matrix
    assert '<span class="names">code, naam, vak</span>' in matrix
    md = render(policy, "md", today=TODAY)
    row = next(x for x in md.splitlines() if x.startswith("| malmberg |"))
    assert "| 3: code, naam, vak |" in row


# ---------------------------------------------------------------------------
# what v2 adds (spec section 7): controller, partner role/kind/location/transfer, agreement terms,
# laws, purpose kinds, DPIAs, key/left; rows that lack what art. 30(1) asks for are flagged

def test_controller_and_its_dpo(reg: dict) -> None:
    c = reg["controller"]
    assert ("Stichting Openbaar Onderwijs Rivierland", "public", "24 hours", []) == (
        c["name"], c["kind"], c["breach_handling"], c["missing"])
    assert c["dpo"].startswith("Functionaris gegevensbescherming")
    assert [] == reg["art30_gaps"]


def test_partner_role_kind_location_and_transfer(reg: dict) -> None:
    padlet = _partner(reg, "padlet")
    assert ("processor", "vendor", "US", False, "scc") == (
        padlet["role"], padlet["kind"], padlet["location"], padlet["in_eea"], padlet["transfer"])
    assert "standard contractual clauses (art. 46(2)(c))" == padlet["transfer_text"]
    duo = _partner(reg, "duo")
    assert ("controller", "government", "NL", True, None) == (
        duo["role"], duo["kind"], duo["location"], duo["in_eea"], duo["transfer"])
    assert "processor" == _partner(reg, "malmberg")["role"]       # the default with an agreement


def test_agreement_coverage_purposes_retention_breach_dpia_model(reg: dict) -> None:
    cito = _partner(reg, "cito")["agreements"][0]
    assert ("convenant_4", ["toetsafname"], "2 years", "24 hours") == (
        cito["model"], cito["purposes"], cito["retain"], cito["breach"])
    assert "DPIA leerlingvolgsysteem 2025 (Kennisnet-model)" == cito["dpia"]
    assert "leerling.geboortedatum" in cito["covers"] and "toets.advies" not in cito["covers"]
    assert cito["covers_text"].startswith("leerling.{achternaam, eckid, geboortedatum")
    noordhoff = _partner(reg, "noordhoff")["agreements"][0]
    assert ("convenant_3", "48 hours") == (noordhoff["model"], noordhoff["breach"])


def test_flow_law_purpose_kind_dpia_and_retention_in_force(reg: dict) -> None:
    verzuim = next(f for f in _partner(reg, "duo")["flows"] if f["rule"] == "duo_verzuimmelding")
    assert "Leerplichtwet 1969, art. 21 (melding van ongeoorloofd verzuim)" == verzuim["law"]
    assert verzuim["basis_text"].startswith("legal obligation (art. 6(1)(c)): Leerplichtwet 1969")
    assert {"verzuim": "compulsory_education"} == verzuim["purpose_kinds"]
    ggd = next(f for f in _partner(reg, "ggd")["flows"] if f["rule"] == "ggd_ziekteverzuim")
    assert "DPIA MAZL 2025 (GGD Gelderland-Zuid en Stedelijk College)" == ggd["dpia"]   # on the rule
    swv = _partner(reg, "swv")["flows"][0]
    assert "DPIA passend onderwijs 2024 (SWV Rivierland)" == swv["dpia"]              # from the agreement
    assert {"name": "overstap", "title": "Overstap naar een andere school: het onderwijskundig rapport via OSO",
            "kind": "transfer", "partners": ["nieuwe_school"]} == next(
        u for u in reg["purposes"] if u["name"] == "overstap")


def test_key_and_left_fields_in_the_catalogue(reg: dict) -> None:
    leerling = next(d for d in reg["catalogue"] if d["name"] == "leerling")
    roles = {f["field"]: f["role"] for f in leerling["fields"] if f["role"]}
    assert {"id": "key", "uitschrijfdatum": "left"} == roles


GAPS = """
dataset leerling subject { id text personal  naam text personal }
partner cloud "Cloud Inc." {
    location US
    transfer scc
    agreement "A" valid from 2025-01-01 { covers leerling.naam  breach 24 hours }
}
partner gemeente { role controller  kind government }
purpose u kind organisation
permit naar_cloud { partner cloud  purpose u  basis public_task("WVO 2020")  fields leerling.naam }
permit naar_gemeente { partner gemeente  purpose u  basis public_task("WVO 2020")  fields leerling.id }
"""


def test_rows_without_dpo_or_retention_are_flagged_in_every_format() -> None:
    policy = avgpolicy.loads(GAPS)
    reg = build_register(policy, today=TODAY)
    assert ["dpo"] == reg["controller"]["missing"]
    assert [{"partner": "cloud", "rule": "naar_cloud", "missing": ["dpo", "retention"]},
            {"partner": "gemeente", "rule": "naar_gemeente", "missing": ["dpo"]}] == reg["art30_gaps"]
    assert 3 == len(register.incomplete_rows(reg))
    md = render(policy, "md", today=TODAY)
    assert "**2 register rows lack what GDPR art. 30(1) asks for**" in md
    assert "data protection officer: **missing**" in md
    row = next(x for x in md.splitlines() if x.startswith("| `naar_cloud`"))
    assert "the time limit for erasure" in row and "(art. 30(1)(f))" in row
    rows = list(csv.DictReader(io.StringIO(render(policy, "csv", today=TODAY))))
    assert {"naar_cloud": "dpo retention", "naar_gemeente": "dpo"} == {r["rule"]: r["art30_missing"] for r in rows}
    page = render(policy, "html", today=TODAY)
    assert page.count('<div class="missing"><b>Missing (GDPR art. 30(1)):</b>') == 2
    assert "Register row incomplete: flow <code>naar_cloud</code>" in page
    assert ["dpo"] == json.loads(render(policy, "json", today=TODAY))["controller"]["missing"]


def test_a_transfer_mechanism_missing_is_flagged() -> None:
    # the checker refuses a non-EEA partner without `transfer`; the register would flag it all the same
    model = avgpolicy.loads(GAPS).model
    assert ["dpo"] == register._partner_gaps(model, model.partners["cloud"])
    without = attrs.evolve(model.partners["cloud"], transfer=None)
    assert ["dpo", "transfer"] == register._partner_gaps(model, without)
    inside = attrs.evolve(without, location="BE")
    assert ["dpo"] == register._partner_gaps(model, inside)


def test_cli_register_strict_exits_1_on_incomplete_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avgpolicy.cli import main

    (tmp_path / "gaps.avg").write_text(GAPS, encoding="utf-8")
    assert 0 == main(["register", str(tmp_path), "--today", "2026-11-25"])
    capsys.readouterr()
    out = tmp_path / "register.md"
    assert 1 == main(["register", str(tmp_path), "--today", "2026-11-25", "--strict", "-o", str(out)])
    err = capsys.readouterr().err
    assert "register: 3 rows lack what GDPR art. 30(1) asks for" in err
    assert "flow naar_cloud to cloud lacks" in err and "(art. 30(1)(f))" in err
    assert out.read_text(encoding="utf-8").startswith("# Processing register")   # written all the same
    assert 0 == main(["register", str(POLICIES), "--strict", "--format", "json", "--output", str(out)])
