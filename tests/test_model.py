"""model.build: the v2 parts of the model (spec 7) and their defaults for v1 texts."""

import datetime

import pytest

from avgpolicy import model as m
from avgpolicy.parser import parse
from avgpolicy.source import Source

D = datetime.date

V1 = """dataset leerling subject {
    id text personal
    roepnaam text personal
}
dataset lesgroep { naam text personal }
partner snappet { agreement "A" valid from 2025-08-01 until 2026-07-31 }
partner dus-i
purpose leermiddelen
permit r { partner snappet purpose leermiddelen basis legal_obligation fields leerling.roepnaam }
"""

V2 = """controller "Stichting Rivierland" { kind private dpo "fg@rivierland.nl" breach_handling 12 hours }
dataset leerling subject {
    nummer int personal key
    id text personal
    roepnaam text personal
    weg date personal left
}
dataset lesgroep { naam text personal  code text personal }
partner snappet {
    kind vendor location US transfer scc
    agreement "A" valid from 2025-08-01 until 2026-07-31 {
        covers leerling.{id, roepnaam}, lesgroep.*, leerling.onbekend
        purposes leermiddelen
        retain 2 years
        breach 1 day
        dpia "DPIA-1"
        model convenant_4
    }
    agreement "B" valid from 2026-01-01 { retain 6 months dpia "DPIA-2" }
}
partner dus-i { role joint_controller kind government }
purpose leermiddelen kind education
purpose archief "Archief"
permit r {
    partner snappet purpose leermiddelen fields leerling.roepnaam
    basis public_task("WVO 2020, art. 2.2") art9 explicit_consent(zorg) dpia "DPIA-r"
}
permit s { partner snappet purpose leermiddelen fields leerling.id basis contract retain 3 hours }
"""


def build(text: str) -> m.PolicyModel:
    f, diags = parse(Source("t.avg", text))
    assert [] == diags
    return m.build([f])


def test_a_v1_text_builds_with_the_defaults_of_spec_7():
    model = build(V1)
    assert m.ControllerInfo("public", None, m.Duration(24, "hours")) == model.controller
    assert not model.controller.declared
    snappet, dus_i = model.partners["snappet"], model.partners["dus-i"]
    assert ("processor", "other", "NL", None) == (snappet.role, snappet.kind, snappet.location, snappet.transfer)
    assert (None, "other") == (dus_i.role, dus_i.kind)  # undeclared: the checker reports it
    (a,) = snappet.agreements
    assert (None, None, None, None, None, None) == (a.covers, a.purposes, a.retain, a.breach, a.dpia, a.model)
    assert a.allows("leerling.roepnaam", "anything")
    assert "other" == model.purposes["leermiddelen"].kind
    (r,) = model.rules
    assert (None, None, None) == (r.law, r.art9_topic, r.dpia)
    assert ("id", None) == (model.catalogue.key, model.catalogue.left)
    assert None is model.catalogue.fields["leerling.id"].role


def test_v2_clauses_reach_the_model():
    model = build(V2)
    c = model.controller
    assert ("private", "fg@rivierland.nl", m.Duration(12, "hours"), "Stichting Rivierland") == (
        c.kind, c.dpo, c.breach_handling, c.name)
    snappet = model.partners["snappet"]
    assert ("processor", "vendor", "US", "scc") == (snappet.role, snappet.kind, snappet.location, snappet.transfer)
    a, b = snappet.agreements
    # `covers` expanded like a rule's fields; an unknown reference covers nothing
    assert frozenset({"leerling.id", "leerling.roepnaam", "lesgroep.naam", "lesgroep.code"}) == a.covers
    assert frozenset({"leermiddelen"}) == a.purposes
    assert (m.Retention(2, "years"), m.Duration(1, "days"), "DPIA-1", "convenant_4") == (
        a.retain, a.breach, a.dpia, a.model)
    assert a.allows("leerling.roepnaam", "leermiddelen")
    assert not a.allows("leerling.roepnaam", "archief")
    assert not a.allows("leerling.weg", "leermiddelen")
    assert (None, None, m.Retention(6, "months")) == (b.covers, b.purposes, b.retain)
    assert ("joint_controller", "government") == (model.partners["dus-i"].role, model.partners["dus-i"].kind)
    assert ("education", "other") == (model.purposes["leermiddelen"].kind, model.purposes["archief"].kind)
    r, s = model.rules
    assert ("WVO 2020, art. 2.2", "explicit_consent", "zorg", "DPIA-r") == (r.law, r.art9, r.art9_topic, r.dpia)
    assert m.Retention(3, "hours") == s.retain
    assert ("nummer", "weg") == (model.catalogue.key, model.catalogue.left)
    assert ("key", "left") == (model.catalogue.fields["leerling.nummer"].role,
                               model.catalogue.fields["leerling.weg"].role)


def test_agreements_in_force_and_what_a_rule_inherits_from_them():
    model = build(V2)
    snappet = model.partners["snappet"]
    r, s = model.rules
    assert ["A"] == [a.reference for a in snappet.agreements_at(D(2025, 12, 31))]
    both = snappet.agreements_at(D(2026, 1, 1))
    assert ["A", "B"] == [a.reference for a in both]
    assert [] == list(snappet.agreements_at(D(2025, 7, 31)))
    # a permit's own retain wins; without one it inherits the shortest of the agreements in force
    assert m.Retention(3, "hours") == s.retain_under(both)
    assert m.Retention(6, "months") == r.retain_under(both)
    assert m.Retention(2, "years") == r.retain_under(both[:1])
    assert None is r.retain_under(())
    assert "DPIA-r" == r.dpia_under(both)
    assert "DPIA-1" == s.dpia_under(both)
    assert None is s.dpia_under(())


@pytest.mark.parametrize(("duration", "hours", "text"), [
    (m.Duration(24, "hours"), 24, "24 hours"), (m.Duration(1, "hours"), 1, "1 hour"),
    (m.Duration(2, "days"), 48, "2 days"), (m.Duration(1, "weeks"), 168, "1 week"),
    (m.Duration(1, "months"), 744, "1 month"), (m.Duration(1, "years"), 8784, "1 year"),
])
def test_durations_in_hours_and_words(duration, hours, text):
    assert (hours, text) == (duration.hours, str(duration))


def test_retentions_compare_by_length():
    lengths = [m.retention_days(x) for x in (m.Retention(36, "hours"), m.Retention(2, "days"),
                                             m.Retention(1, "weeks"), m.Retention(1, "months"),
                                             m.Retention(1, "years"))]
    assert sorted(lengths) == lengths
    assert 1.5 == m.retention_days(m.Retention(36, "hours"))


def test_an_unknown_unit_builds_no_duration():
    model = build('controller "S" { breach_handling 2 fortnights }\n'
                  'dataset l subject { id text personal }\n'
                  'partner p { agreement "A" valid from 2025-01-01 { breach 1 eon retain 2 aeons } }')
    assert m.DEFAULT_BREACH_HANDLING == model.controller.breach_handling
    (a,) = model.partners["p"].agreements
    assert (None, None) == (a.breach, a.retain)
