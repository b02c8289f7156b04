"""Benchmark report: a pytest-benchmark JSON becomes a table of ratios against the targets, and docs/performance.md.

    python -m benchmarks.report .benchmarks/run.json                 # the table, to stdout
    python -m benchmarks.report .benchmarks/run.json --write docs/performance.md [--notes benchmarks/notes.md]

Each benchmark's ``extra_info`` says its engine, case, set size and how many
units (decisions or records) a round handles; a figure here is the round's
time divided by its units. Ratios use the fastest round (``min``; the machine
is shared, and slower rounds measure the neighbours) unless ``--stat median``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

COMMAND = ("mkdir -p .benchmarks && "
           "python -m pytest benchmarks -p no:cacheprovider --benchmark-json=.benchmarks/run.json")
REPORT = "python -m benchmarks.report .benchmarks/run.json --write docs/performance.md --notes benchmarks/notes.md"
QUERIES = ("lesmateriaal", "gemengd", "toets", "bekostiging")


class Run:
    """The benchmarks of one JSON file, looked up by (case, size)."""

    def __init__(self, data: Mapping[str, Any], stat: str = "min") -> None:
        self.data = data
        self.stat = stat
        self.by: dict[tuple[str, int], Mapping[str, Any]] = {}
        for b in data["benchmarks"]:
            info = b.get("extra_info", {})
            if "case" in info:
                self.by[(info["case"], info["size"])] = b

    def unit(self, case: str, size: int) -> float | None:
        """Seconds per unit (decision or record), or None when the case did not run."""
        b = self.by.get((case, size))
        if b is None:
            return None
        return float(b["stats"][self.stat]) / b["extra_info"]["units"]

    def paired(self, case: str, size: int) -> float | None:
        """Seconds per unit from an interleaved benchmark (``bench_interleaved.py``, ``bench_compile.py``'s
        ``compile interleaved``), if one ran and timed this case."""
        key = f"{case}@{size}"
        for b in self.by.values():
            per_unit = b.get("extra_info", {}).get("per_unit") or {}
            if key in per_unit:
                return float(per_unit[key])
        return None

    def sizes(self, case: str) -> list[int]:
        return sorted(size for c, size in self.by if c == case)

    def info(self, case: str, size: int) -> Mapping[str, Any]:
        return self.by[(case, size)].get("extra_info", {})


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "not run"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} µs"


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _verdict(value: float | None, limit: float, *, at_most: bool = True) -> str:
    if value is None:
        return "not run"
    ok = value <= limit if at_most else value >= limit
    return "met" if ok else "**missed**"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x" if value < 100 else f"{value:,.0f}x"


def _worst(values: Sequence[float | None], *, at_most: bool) -> float | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    return max(known) if at_most else min(known)


def rows(run: Run) -> list[list[str]]:
    """The ratio table: measure, avgpolicy, reference, ratio, interleaved ratio, target, verdict.

    A verdict takes the less favourable of the sequential and the interleaved ratio.
    """
    out: list[list[str]] = []

    def pair(label: str, ours: tuple[str, int], ref: tuple[str, int], limit: float | None, *,
             at_most: bool = True) -> None:
        a, b = run.unit(*ours), run.unit(*ref)
        r = _ratio(a, b)
        ri = _ratio(run.paired(*ours), run.paired(*ref))
        if limit is None:
            target = verdict = ""
        else:
            target = f"{'≤' if at_most else '≥'} {limit:g}x"
            verdict = _verdict(_worst([r, ri], at_most=at_most), limit, at_most=at_most)
        out.append([label, _time(a), _time(b), _x(r), _x(ri), target, verdict])

    hot = next(iter(run.sizes("compiled lesmateriaal")), 100)
    for name in QUERIES:
        pair(f"held compiled function / hand-written, `{name}`", (f"compiled {name}", hot),
             (f"baseline {name}", hot), 1.5)
    for name in QUERIES:
        pair(f"`decide` / hand-written, `{name}`", (f"decide {name}", hot), (f"baseline {name}", hot), 4)
    pair("`decide` / hand-written, mixed traffic (the four requests in turn)", ("decide mixed", hot),
         ("baseline mixed", hot), 4)
    flt = run.unit("filter gemengd", hot)
    rate = f" ({1 / flt:,.0f} records/s)" if flt else ""
    pair(f"`filter` / hand-written check-and-project loop, per record{rate}", ("filter gemengd", hot),
         ("filter baseline gemengd", hot), 1.5)
    for case in ("latency compiled", "latency decide"):
        sizes = run.sizes(case)
        for size in sizes[1:]:
            pair(f"{case.split()[1]} per decision, {size:,} rules / {sizes[0]:,} rules", (case, size),
                 (case, sizes[0]), 1.2 if size == max(sizes) else None)
    for size in run.sizes("load+validate+compile"):
        t = run.unit("load+validate+compile", size)
        cpu = run.info("load+validate+compile", size).get("cpu_seconds")
        big = size == 10_000
        verdict = _verdict(t, 5.0) if big else ""
        if big and t is not None and t > 5.0 and cpu is not None and cpu <= 5.0:
            verdict += " on wall time (CPU time within)"
        out.append([f"load + validate + compile, {size:,} rules (wall)",
                    _time(t), f"CPU {_time(cpu)}" if cpu is not None else "", "", "", "≤ 5 s" if big else "",
                    verdict])
    for size in run.sizes("first compiled decision"):  # bench_compile.py (issue 15)
        label = run.info("first compiled decision", size).get("label", f"{size:,} rules")
        pair(f"first compiled decision / interpreted, {label}", ("first compiled decision", size),
             ("interpreted decision", size), 10)
        if run.unit("new epoch decision", size) is not None:
            pair(f"first decision in a new epoch / interpreted, {label}", ("new epoch decision", size),
                 ("interpreted decision", size), None)
        pair(f"interpreted / held decision (the held function's speed), {label}", ("interpreted decision", size),
             ("held decision", size), None)
        if run.unit("weekly decisions compiled", size) is not None:
            pair(f"weekly decisions, compiled / interpreted (fresh policy), {label}",
                 ("weekly decisions compiled", size), ("weekly decisions interpreted", size), None)
    for peer in ("cedar", "casbin"):
        for size in run.sizes(f"{peer} decision"):
            pair(f"{peer} / avgpolicy `decide`, per decision, {size:,} rules", (f"{peer} decision", size),
                 ("latency decide", size), 100, at_most=False)
    return out


def table(run: Run) -> str:
    head = ["measure", "avgpolicy", "reference", "ratio", "interleaved", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(run)]
    return "\n".join(lines)


def phases_table(run: Run) -> str:
    sizes = run.sizes("load+validate+compile")
    if not sizes:
        return ""
    names = list(run.info("load+validate+compile", sizes[0]).get("phases", {}))
    lines = ["| rules | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for size in sizes:
        ph = run.info("load+validate+compile", size).get("phases", {})
        lines.append(f"| {size:,} | " + " | ".join(_time(ph.get(n)) for n in names) + " |")
    return "\n".join(lines)


def _load(values: Sequence[float] | None) -> str:
    return ", ".join(f"{v:.1f}" for v in values) if values else "?"


def machine(run: Run) -> str:
    m = run.data.get("machine_info", {})
    extra = m.get("avgpolicy", {})
    cpu = m.get("cpu", {})
    items = [
        ("CPU", extra.get("cpu_model") or cpu.get("brand_raw", "?")),
        ("cores (nproc)", str(extra.get("nproc", cpu.get("count", "?")))),
        ("Python", f"{m.get('python_implementation', '')} {m.get('python_version', '?')}"),
        ("system", f"{m.get('system', '')} {m.get('release', '')}"),
        ("packages", ", ".join(f"{k} {v}" for k, v in sorted(extra.get("packages", {}).items()))),
        ("load average (1, 5, 15 min) at start / end", f"{_load(extra.get('loadavg_start'))} / "
                                                       f"{_load(extra.get('loadavg_end'))}"),
        ("commit", f"{run.data.get('commit_info', {}).get('id', '?')[:10]}"
                   f"{' (with uncommitted changes)' if run.data.get('commit_info', {}).get('dirty') else ''}"),
        ("run at", run.data.get("datetime", "?")),
    ]
    return "\n".join(f"- {k}: {v}" for k, v in items)


#: the sections ``document`` writes; any other ``## `` section of the page is written by hand and kept
GENERATED = ("What is measured", "Load stages", "Machine", "Reproduce")


def sections(text: str) -> list[tuple[str, str]]:
    """The ``## `` sections of a markdown page, in order: (heading, the section's text with its heading);
    what comes before the first is left out (the page's title, introduction and table)."""
    out: list[tuple[str, str]] = []
    fence = False
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            fence = not fence
        if line.startswith("## ") and not fence:
            out.append((line[3:].strip(), line))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + line)
    return out


def hand_sections(old: str, notes: str = "") -> tuple[list[str], list[str]]:
    """The hand-written sections of an existing page (not generated, not from the notes): (those before
    ``## Machine``, those after it), each a section's text."""
    made = set(GENERATED) | {h for h, _ in sections(notes)}
    before: list[str] = []
    after: list[str] = []
    seen_machine = False
    for heading, text in sections(old):
        if heading == "Machine":
            seen_machine = True
        if heading not in made:
            (after if seen_machine else before).append(text.strip())
    return before, after


def document(run: Run, notes: str = "", old: str = "") -> str:
    """The page; ``old`` is the page being replaced, whose hand-written ``## `` sections are kept (those
    before ``## Machine`` after the notes, the others at the end), so a rerun rewrites the figures only."""
    parts = [
        "# Performance",
        "",
        "Measured, not estimated: every figure below comes from one run of the benchmark suite on the machine "
        "described at the end, written into this page by `benchmarks/report.py`. Times are per decision or per "
        f"student record, from the fastest round (`{run.stat}`) of each benchmark; the reference column is the "
        "hand-written Python baseline, the same measure on the 10-rule set, or the peer engine; for loads it is the "
        "CPU time of one load (`time.process_time`), which leaves out time other processes on the shared "
        "machine took. The *interleaved* column comes from `bench_interleaved.py`, which times every hot-path "
        "loop and its reference in turns (fastest of 60 rounds each), so a busy spell of the machine hits both "
        "sides alike; a verdict takes the less favourable of the two ratios.",
        "",
        table(run),
        "",
        "## What is measured",
        "",
        "- The scenario (`benchmarks/gen.py`): a generated school-board policy set (catalogue, partners with "
        "processing agreements, purposes, permits with conditions on school, leerjaar, lesgroepen and age, windows, "
        "consent bases, transforms, forbids) of 10, 100, 1,000 and 10,000 rules, always holding the same core; "
        "four requests (`lesmateriaal`: all fields allowed for pupils in the subset; `gemengd`: a transform, a "
        "second conditional permit and a forbid; `toets`: a forbid on unknown age; `bekostiging`: unconditional) "
        "over 1,000 generated pupils, about 1 in 12 with a missing, `None` or ill-typed value, at 2026-10-01.",
        "- The baseline (`benchmarks/baseline.py`): the same checks and projections written by hand, careful with "
        "bad data. Before any timing, compiled, interpreted and baseline verdicts are checked equal for every "
        "request and record, and `filter` output equal to the hand-written loop's.",
        "- Peers (`benchmarks/peers.py`): the whole generated set translated rule by rule to Cedar (cedarpy, with a "
        "schema the translation validates against at up to 1,000 rules) and to Casbin (an ABAC model with "
        "`eval()` rules). Their per-field verdicts are checked equal to the baseline's on the scenario before "
        "timing. The timed call is the peer's decision alone, on inputs prepared beforehand (the record-to-entity "
        "adapter is not timed), so peer figures are a lower bound. Casbin runs at 10 and 100 rules only: it "
        "evaluates every policy line per request.",
        "",
        "## Load stages",
        "",
        "One more load of each set, split by stage: wall time of reading the files, parsing, checking, building "
        "the model and compiling the four scenario functions, called one by one (so without the loader's pause "
        "of the garbage collector), and the CPU time of that whole load:",
        "",
        phases_table(run),
        "",
    ]
    before, after = hand_sections(old, notes)
    if notes:
        parts += [notes.strip(), ""]
    for text in before:
        parts += [text, ""]
    parts += [
        "## Machine",
        "",
        machine(run),
        "",
        "## Reproduce",
        "",
        "```",
        "pip install -e '.[test,bench]'      # cedarpy and casbin are optional: their benchmarks skip without them",
        COMMAND,
        REPORT,
        "```",
        "",
        "The plain test run (`python -m pytest`) never collects `benchmarks/`.",
        "",
    ]
    for text in after:
        parts += [text, ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    ap.add_argument("json", type=Path, help="a pytest-benchmark JSON (--benchmark-json)")
    ap.add_argument("--write", type=Path, help="write the performance page here (e.g. docs/performance.md)")
    ap.add_argument("--notes", type=Path, help="a markdown file of findings to include in the page")
    ap.add_argument("--stat", default="min", choices=("min", "median", "mean"))
    args = ap.parse_args(argv)
    run = Run(json.loads(args.json.read_text(encoding="utf-8")), stat=args.stat)
    print(table(run))
    if args.write:
        notes = args.notes.read_text(encoding="utf-8") if args.notes else ""
        old = args.write.read_text(encoding="utf-8") if args.write.exists() else ""
        args.write.write_text(document(run, notes, old), encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
