"""Fuzzing the loader: whatever text goes in, only a located PolicyError comes out.

Random text, language-shaped soup, generated valid policy sets and their
mutations go through ``avgpolicy.loads`` and ``avgpolicy check``. The property:
a set either loads or raises ``PolicyError`` whose every diagnostic has a file,
a line and column >= 1, a code ``[EW]ddd`` and a message. No Lark exception,
IndexError or RecursionError escapes, however deep or broken the input.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from fuzz_strategies import (
    Layout,
    ascii_soup,
    language_soup,
    mutate,
    mutated_texts,
    policy_specs,
    policy_texts,
    render,
    render_declarations,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import avgpolicy
from avgpolicy import PolicyError
from avgpolicy.cli import main as cli_main

CODE_RE = re.compile(r"^[EW]\d{3}$")

HEADER = """dataset leerling subject {
    school text personal
    leerjaar int personal
    geboortedatum date personal
}
partner snappet { role controller kind school }
purpose leermiddelen
"""


def assert_well_formed(err: PolicyError, texts: dict[str, str]) -> None:
    """Every diagnostic is located inside a given file, coded, and says something."""
    assert err.diagnostics, "a PolicyError without diagnostics"
    assert any(d.is_error for d in err.diagnostics)
    for d in err.diagnostics:
        assert d.file in texts, d
        assert CODE_RE.match(d.code), d
        assert d.severity == ("warning" if d.code.startswith("W") else "error"), d
        assert isinstance(d.message, str) and d.message.strip(), d
        assert isinstance(d.line, int) and d.line >= 1, d
        assert isinstance(d.column, int) and d.column >= 1, d
        assert d.line <= texts[d.file].count("\n") + 1, d
    rendered = str(err)  # rendering carets must not fail either
    assert isinstance(rendered, str) and rendered


def load_or_error(text: str | dict[str, str]) -> avgpolicy.Policy | PolicyError:
    texts = {"<policy>": text} if isinstance(text, str) else text
    try:
        return avgpolicy.loads(text)
    except PolicyError as err:
        assert_well_formed(err, texts)
        return err


# ---------------------------------------------------------------------------
# Random text


@given(st.text())
def test_random_unicode_text(text: str) -> None:
    load_or_error(text)


@given(language_soup)
def test_language_soup(text: str) -> None:
    load_or_error(text)


@given(ascii_soup)
def test_language_characters_without_spaces(text: str) -> None:
    load_or_error(text)


@given(st.text(st.sampled_from('{}()[]",.*#=<>!\\:\n -0123456789abnotiru'), max_size=200))
def test_punctuation_storm(text: str) -> None:
    load_or_error(text)


# ---------------------------------------------------------------------------
# Generated valid sets and their mutations


@given(policy_texts())
def test_generated_policy_sets_load(spec_text: tuple) -> None:
    spec, text = spec_text
    result = load_or_error(text)
    assert not isinstance(result, PolicyError), str(result)
    assert len(spec.rules) == len(result.model.rules)


@given(policy_specs(), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_generated_sets_split_over_files_load(spec, n_files: int, seed: int) -> None:
    decls = render_declarations(spec, Layout(seed))
    files: dict[str, str] = {f"deel{i}.avg": "" for i in range(n_files)}
    for i, d in enumerate(decls):
        name = f"deel{(i * 7 + seed) % n_files}.avg"
        files[name] += d + "\n"
    result = load_or_error(files)
    assert not isinstance(result, PolicyError), str(result)


@given(mutated_texts())
def test_mutated_policy_sets(text: str) -> None:
    load_or_error(text)


@given(policy_texts(max_rules=3), st.data())
def test_mutated_sets_over_several_files(spec_text: tuple, data: st.DataObject) -> None:
    _, text = spec_text
    files = {"a.avg": HEADER, "b.avg": data.draw(mutate(text)), "c.avg": data.draw(mutate(text))}
    load_or_error(files)


@given(st.lists(st.sampled_from([HEADER, "permit r {", "}", "forbid f { partner * fields leerling.* }",
                                 '"', "#", "students where (", "not", "leerjaar in 3..", "\n"]), max_size=20))
def test_fragments_in_any_order(parts: list[str]) -> None:
    load_or_error("\n".join(parts))


# ---------------------------------------------------------------------------
# Depth and size at the edges


@pytest.mark.parametrize("shape", ["parens", "not", "and_or", "mixed"])
def test_condition_nested_1000_deep_is_a_diagnostic(shape: str) -> None:
    n = 1000
    atom = "leerjaar == 3"
    if shape == "parens":
        cond = "(" * n + atom + ")" * n
    elif shape == "not":
        cond = "not " * n + atom
    elif shape == "and_or":
        cond = "(" * n + atom + "".join(f" {'and' if i % 2 else 'or'} {atom})" for i in range(n))
    else:
        cond = "".join("not (" if i % 2 else "(" for i in range(n)) + atom + ")" * n
    text = HEADER + f"permit r {{ partner snappet purpose leermiddelen fields leerling.school basis contract\n" \
                    f"students where {cond} }}\n"
    result = load_or_error(text)
    if shape == "parens":  # redundant parentheses add no level of nesting: either answer is fine
        assert not isinstance(result, PolicyError) or "E005" in {d.code for d in result.errors}
    else:
        assert isinstance(result, PolicyError)
        assert "E005" in {d.code for d in result.errors}


def test_unclosed_parentheses_10000_deep_is_a_diagnostic() -> None:
    text = HEADER + "permit r { partner snappet students where " + "(" * 10_000
    result = load_or_error(text)
    assert isinstance(result, PolicyError)


def test_huge_integer_is_a_diagnostic() -> None:
    text = HEADER + ("permit r { partner snappet purpose leermiddelen fields leerling.school basis contract "
                     f"students where leerjaar == {'9' * 10_000} }}\n")
    result = load_or_error(text)
    assert isinstance(result, PolicyError)
    assert "E007" in {d.code for d in result.errors}


@pytest.mark.parametrize("junk", ["\x00", "\u2028", "\u2029", "\ufeff", "\r", "\x0b", "\x0c", "\x85", "é"])
def test_control_and_separator_characters(junk: str) -> None:
    text = HEADER.replace("\n", f"\n{junk}") + f"purpose {junk}x\n"
    load_or_error(text)
    load_or_error(junk * 50)


# ---------------------------------------------------------------------------
# The command line never crashes on the same inputs

_cli_texts = st.one_of(mutated_texts(), language_soup, policy_texts().map(lambda st_: st_[1]))


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(_cli_texts, st.sampled_from(["human", "json"]))
def test_cli_check_never_crashes(text: str, fmt: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "beleid.avg"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = cli_main(["check", str(path), "--format", fmt])
    assert code in (0, 1)
    if fmt == "json":
        report = json.loads(out.getvalue())
        assert (0 if report["errors"] == 0 else 1) == code
        for d in report["diagnostics"]:
            assert CODE_RE.match(d["code"]) and d["line"] >= 1 and d["column"] >= 1 and d["message"]
    else:
        assert "checked:" in out.getvalue()


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=300) | mutated_texts().map(lambda t: t.encode("utf-8", "surrogatepass")),
                min_size=1, max_size=3))
def test_load_from_a_folder_of_arbitrary_bytes(blobs: list[bytes]) -> None:
    """Files that are not UTF-8 (or not text at all) are still only a PolicyError."""
    with tempfile.TemporaryDirectory() as tmp:
        for i, blob in enumerate(blobs):
            (Path(tmp) / f"deel{i}.avg").write_bytes(blob)
        try:
            avgpolicy.load(tmp)
        except PolicyError as err:
            texts = {str(Path(tmp) / f"deel{i}.avg"): blob.decode("utf-8", "replace") for i, blob in enumerate(blobs)}
            assert_well_formed(err, texts)


# ---------------------------------------------------------------------------
# Spec conformance found by fuzzing (fixed in the parser: several declarations may share a line)


@settings(max_examples=20)
@given(policy_specs(with_tests=False))
def test_whitespace_is_insignificant_one_line_sets_load(spec) -> None:
    text = render(spec, Layout(0, spaces_only=True)).removeprefix("# generated policy\n").replace("\n", " ")
    result = load_or_error(text)
    assert not isinstance(result, PolicyError), str(result)


def test_consent_by_student_in_test_block() -> None:
    text = HEADER + """consent foto
test t {
    at 2026-01-15
    partner snappet
    purpose leermiddelen
    student { geboortedatum: 2008-05-01 }
    consent foto by student on 2025-09-01
    expect deny leerling.school
}
"""
    result = load_or_error(text)
    assert not isinstance(result, PolicyError), str(result)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x1e"])
def test_caret_shows_the_diagnostic_line_after_unicode_line_separators(separator: str) -> None:
    text = HEADER + f'partner school "een{separator}twee" {{ role controller }}\npurpose fout "x" "y"\n'
    result = load_or_error(text)
    assert isinstance(result, PolicyError)
    d = result.errors[0]
    assert 9 == d.line
    assert 'purpose fout "x" "y"' == d.render(result._sources).splitlines()[1]


# ---------------------------------------------------------------------------
# Time grows linearly with the size of the set


def _big_valid_text(target_bytes: int) -> str:
    """A valid set of about ``target_bytes``: one catalogue and a block of rules per partner.

    As in a real set, a bigger set has more partners, each with its own rules, over a
    fixed list of 20 purposes; permits do not all pile onto one (partner, purpose, field).
    """
    parts = [HEADER, "dataset absentie {\n    datum date personal\n    reden text special\n}\n",
             "consent foto\n", *(f"purpose u{k} \"Doel {k}\"\n" for k in range(20))]
    size = sum(map(len, parts))
    i = 0
    while size < target_bytes:
        basis = ("contract", "consent(foto)", 'public_task("WVO 2020, art. 2.2")')[i % 3]
        block = (f"partner p{i} \"Partner {i}\" {{\n  role processor kind vendor location NL\n"
                 f"  agreement \"DPA-{i}\" valid from 2025-01-01 until 2027-12-31 {{\n"
                 f"    covers leerling.{{school, leerjaar, geboortedatum}} purposes u{i % 20}, leermiddelen\n"
                 f"    retain 5 years breach 24 hours model convenant_4\n  }}\n}}\n"
                 f"permit r{i} {{\n  partner p{i}\n  purpose u{i % 20}, leermiddelen\n"
                 f"  fields leerling.{{school, leerjaar}}, leerling.geboortedatum as year\n"
                 f"  basis {basis}\n"
                 f"  students where school in [\"{i:04d}AB\", \"34CD\"] and (leerjaar >= {i % 8} or age < 12)\n"
                 f"  valid from 2025-08-01 until 2026-07-31\n  retain {1 + i % 5} years\n"
                 f"  note \"regel {i}\"\n}}\n"
                 f"forbid f{i} {{ partner p{i} fields absentie.reden students where not leerjaar in 1..2 }}\n")
        parts.append(block)
        size += len(block)
        i += 1
    return "".join(parts)


def _time_load(text: str, repeat: int) -> float:
    """Best CPU time of ``repeat`` loads (CPU time: other load on the machine does not count)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        avgpolicy.loads(text)
        best = min(best, time.process_time() - t0)
    return best


@pytest.mark.slow
def test_load_time_grows_linearly() -> None:
    small, large = _big_valid_text(100_000), _big_valid_text(1_000_000)
    avgpolicy.loads(small)  # warm up: build the parser
    t_small = _time_load(small, 5)
    t_large = _time_load(large, 2)
    ratio = t_large / t_small
    print(f"\nload 100 KB: {t_small:.3f}s, 1 MB: {t_large:.3f}s, ratio {ratio:.1f}x "
          f"(size ratio {len(large) / len(small):.1f}x)")
    assert ratio < 25, f"loading 10x more policy text took {ratio:.1f}x as long"
