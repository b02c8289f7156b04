"""README: it opens with the two set-up commands, and its tour policy loads and passes its test."""

import re
from pathlib import Path

import avgpolicy
from avgpolicy.testing import run

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", text, re.S).group(1).strip().splitlines()
    assert 2 == len(first_block)
    assert first_block[0].endswith("pip install . && avgpolicy demo")
    assert first_block[1].endswith("pip install '.[test]' && python -m pytest")


def test_tour_policy_validates_and_its_test_passes():
    text = README.read_text(encoding="utf-8")
    policy_text = re.search(r"```\n(controller .*?)```", text, re.S).group(1)
    policy = avgpolicy.loads(policy_text)
    assert () == policy.warnings
    report = run(policy)
    assert ["snappet_ziet_groep_5"] == [r.name for r in report.results]
    assert all(r.passed for r in report.results)


def _python_block() -> str:
    text = README.read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_tour_says_it_is_not_the_loaded_policy_and_the_snippet_loads_policies():
    """Issue 16 item 8: the tour's policy is a cut-down one, and the README says so in words."""
    text = README.read_text(encoding="utf-8")
    tour = text[text.index("## A short tour"):text.index("```\ncontroller")]
    assert "policies/" in tour and "cut-down" in tour
    assert 'avgpolicy.load("policies/"' in _python_block()


def test_readme_python_runs_against_policies_and_its_comments_hold(monkeypatch):
    """Run the README's Python block against the bundled policies/ and check the claims its comments make."""
    root = README.parent
    monkeypatch.chdir(root)
    block = _python_block()
    sent: list[dict] = []
    students_in = []
    namespace: dict = {"students": students_in, "send": sent.append}
    # the block's own student, plus one who is not in groups 3-8, as the feed the loops run over
    exec(compile(block.replace("print(decision.explain())", "explained = decision.explain()"),
                 "README.md", "exec"), namespace)
    student, decision = namespace["student"], namespace["decision"]

    # "decision.allowed  # False: roepnaam is allowed, the BSN is not (outside_agreement)"
    claim = next(line for line in block.splitlines() if line.startswith("decision.allowed"))
    assert "False" in claim and decision.allowed is False
    assert "roepnaam is allowed" in claim and decision.fields["leerling.roepnaam"].allowed
    bsn = decision.fields["leerling.bsn"]
    assert not bsn.allowed
    assert [r.code for r in bsn.reasons] == ["outside_agreement"] and "outside_agreement" in claim
    # "naming rules, law, agreement and source lines"
    explained = namespace["explained"]
    for word in ("snappet_rekenen_taal", "VO4-2023-SNAP-014", "WPO", "leermiddelen.avg:"):
        assert word in explained

    # the loops: run them over the block's student and a kleuter outside groups 3-8
    kleuter = dict(student, id="L-2048", leerjaar=1)
    students_in.extend([student, kleuter])
    exec(compile(block[block.index("check = policy.compile"):], "README.md", "exec"), namespace)
    assert namespace["check"](student).allowed and not namespace["check"](kleuter).allowed
    # "only permitted fields; leerling.id as Snappet's own pseudonym"
    assert len(sent) == 1
    (row,) = sent
    assert row["leerling.roepnaam"] == "Sam"
    assert row["leerling.id"] != student["id"] and len(row["leerling.id"]) == 64


def test_readme_actief_remark_holds(monkeypatch):
    """The README says: without "actief": True every field is denied (a forbid that cannot be decided blocks)."""
    monkeypatch.chdir(README.parent)
    block = _python_block()
    namespace: dict = {}
    exec(compile(block[:block.index("decision.allowed")], "README.md", "exec"), namespace)
    policy, student = namespace["policy"], dict(namespace["student"])
    del student["actief"]
    d = policy.decide(partner="snappet", purpose="leermiddelen", fields=["leerling.roepnaam"],
                      student=student, at=namespace["date"](2025, 10, 1))
    codes = {r.code for r in d.fields["leerling.roepnaam"].reasons}
    assert not d.allowed and "forbidden" in codes
