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
    policy_text = re.search(r"```\n(dataset .*?)```", text, re.S).group(1)
    policy = avgpolicy.loads(policy_text)
    assert () == policy.warnings
    report = run(policy)
    assert ["snappet_ziet_groep_5"] == [r.name for r in report.results]
    assert all(r.passed for r in report.results)
