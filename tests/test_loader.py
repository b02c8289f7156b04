"""Loader: files and folders, named texts, the `today` of W005, and calls that are wrong in themselves."""

import datetime

import pytest

import avgpolicy

CATALOGUE = "dataset leerling subject {\n  id text personal\n  geboortedatum date personal\n}\n"
PARTNER = 'partner snappet "Snappet" { role controller }\npurpose leermiddelen\n'
ENDED_RULE = """permit oud {
    partner snappet
    purpose leermiddelen
    basis   public_task("Wet op het primair onderwijs, art. 8")
    fields  leerling.id
    valid   from 2024-08-01 until 2025-07-31
}
"""


def test_load_reads_every_avg_file_below_a_folder(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "catalogue.avg").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "rules" / "partners.avg").write_text(PARTNER, encoding="utf-8")
    (tmp_path / "rules" / "notes.txt").write_text("not a policy", encoding="utf-8")
    policy = avgpolicy.load(tmp_path)
    assert ["snappet"] == list(policy.model.partners)
    assert policy.version == avgpolicy.load(tmp_path / "rules", tmp_path / "catalogue.avg").version


def test_errors_name_the_file_they_are_in(tmp_path):
    (tmp_path / "a.avg").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "b.avg").write_text("permit x {\n  partner nobody\n}\n", encoding="utf-8")
    with pytest.raises(avgpolicy.PolicyError) as info:
        avgpolicy.load(tmp_path)
    assert {str(tmp_path / "b.avg")} == {d.file for d in info.value.errors}


def test_today_decides_whether_a_window_has_ended():
    text = CATALOGUE + PARTNER + ENDED_RULE
    before = avgpolicy.loads(text, today=datetime.date(2025, 7, 31))
    after = avgpolicy.loads(text, today=datetime.date(2025, 8, 1))
    assert "W005" not in [w.code for w in before.warnings]
    assert "W005" in [w.code for w in after.warnings]


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"timezone": "Mars/Olympus"}, ValueError),
    ({"timezone": 1}, TypeError),
    ({"pseudonym_key": "text, not bytes"}, TypeError),
    ({"pseudonym_key": b""}, ValueError),
    ({"today": datetime.datetime(2025, 1, 1)}, TypeError),
    ({"cache_size": 0}, ValueError),
])
def test_wrong_calls_raise_type_or_value_errors(kwargs, error):
    with pytest.raises(error):
        avgpolicy.loads(CATALOGUE, **kwargs)


def test_wrong_inputs_raise_before_reading_anything(tmp_path):
    with pytest.raises(TypeError):
        avgpolicy.load()
    with pytest.raises(FileNotFoundError):
        avgpolicy.load(tmp_path / "missing")
    with pytest.raises(TypeError):
        avgpolicy.loads(42)
    with pytest.raises(TypeError):
        avgpolicy.loads({"a.avg": 42})
    with pytest.raises(ValueError):
        avgpolicy.loads({})
