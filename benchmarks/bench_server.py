"""The sidecar over loopback, 8 concurrent clients, against the same decisions made in process.

Run as a script for the table in docs/performance.md::

    python benchmarks/bench_server.py            # every mode: inline, thread, auto (the default)
    python benchmarks/bench_server.py --quick    # the default mode only

or through pytest (``python -m pytest benchmarks/bench_server.py``), which runs the default mode and
records the figures in the benchmark JSON's ``extra_info``. Figures:

* single evaluations: p50 and p99 latency (8 clients each sending one request at a time), and the same
  while one of the 8 clients sends batches of 1,000 instead (does a batch stall the singles?);
* batches of 1,000 evaluations (``/access/v1/evaluations``): seconds per batch at 8 clients;
* the baseline: the same request decided in process, ``json.loads`` of the request, ``decide`` and
  ``json.dumps`` of the answer (per single, and per batch of 1,000).

The clients run in this process (8 threads, one httpx.Client each) on the same cores as the server, so
the HTTP figures include the clients' own cost; the ratios are an upper bound of the sidecar's.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_server import Server  # noqa: E402  (the tests' subprocess runner: one way to start the sidecar)

import avgpolicy  # noqa: E402
from avgpolicy.cli import student_from_json  # noqa: E402

AT = "2026-03-02"
FIELDS = ["leerling.roepnaam", "leerling.eckid", "leerling.leerjaar"]
CLIENTS = 8
MODES = {"inline": "-1", "thread": "0", "auto": "16384"}


def students(n: int, seed: int = 14) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        school = rnd.choice(["12AB", "34CD"])
        out.append({"id": f"L{i:06d}", "eckid": f"eck-{i}", "roepnaam": rnd.choice(["Daan", "Sem", "Emma", "Noor"]),
                    "achternaam": "Jansen", "school": school, "leerjaar": rnd.randint(1, 8),
                    "onderwijstype": "po" if school == "12AB" else rnd.choice(["vmbo", "havo", "vwo"]),
                    "geboortedatum": f"{rnd.randint(2010, 2020)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                    "actief": rnd.random() > 0.05, "lesgroepen": ["5B"]})
    return out


def single(record: dict[str, Any]) -> dict[str, Any]:
    return {"subject": {"type": "partner", "id": "snappet"}, "action": {"name": "leermiddelen"},
            "resource": {"type": "student", "id": record["id"], "properties": record},
            "context": {"fields": FIELDS, "at": AT}}


def batch(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"subject": {"type": "partner", "id": "snappet"}, "action": {"name": "leermiddelen"},
            "context": {"fields": FIELDS, "at": AT},
            "evaluations": [{"resource": {"type": "student", "id": r["id"], "properties": r}} for r in records]}


def in_process(policy: avgpolicy.Policy, records: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per single and per batch of 1,000: json.loads + decide + json.dumps of the same data."""
    at = datetime.date(2026, 3, 2)
    singles = [json.dumps(single(r)).encode() for r in records]
    whole = json.dumps(batch(records)).encode()
    memo: dict[int, tuple[Any, dict[str, Any]]] = {}  # to_dict once per (shared, immutable) Decision, as the sidecar

    def fields_of(d: Any) -> dict[str, Any]:
        hit = memo.get(id(d))
        if hit is None or hit[0] is not d:
            hit = memo[id(d)] = (d, {k: fd.to_dict() for k, fd in d.fields.items()})
        return hit[1]

    def one(raw: bytes) -> bytes:
        body = json.loads(raw)
        d = policy.decide(body["subject"]["id"], body["action"]["name"], body["context"]["fields"],
                          student_from_json(body["resource"]["properties"], policy), at=at)
        return json.dumps({"decision": d.allowed, "context": {"policy_version": d.policy_version,
                                                              "fields": fields_of(d)}}).encode()

    def many(raw: bytes) -> bytes:
        body = json.loads(raw)
        out = []
        for item in body["evaluations"]:
            d = policy.decide("snappet", "leermiddelen", FIELDS, student_from_json(item["resource"]["properties"],
                                                                                    policy), at=at)
            out.append({"decision": d.allowed, "context": {"policy_version": d.policy_version,
                                                           "fields": fields_of(d)}})
        return json.dumps({"evaluations": out}).encode()

    for raw in singles[:50]:
        one(raw)
    best_single = min(_timed(lambda: [one(raw) for raw in singles]) for _ in range(5)) / len(singles)
    best_batch = min(_timed(lambda: many(whole)) for _ in range(5))
    return {"single": best_single, "batch": best_batch}


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _clients(url: str, work: list[Any], seconds: float) -> list[list[float]]:
    """Run ``work[i](client)`` in a loop in thread i for ``seconds``; per thread the latencies."""
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in work]
    errors: list[str] = []

    def loop(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not stop.is_set():
                t = time.perf_counter()
                response = work[i](client)
                latencies[i].append(time.perf_counter() - t)
                if response.status_code != 200:
                    errors.append(response.text[:200])
                    stop.set()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(work))]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return latencies


def _quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure(mode: str, policy_dir: Path, records: list[dict[str, Any]], seconds: float) -> dict[str, float]:
    srv = Server(policy_dir, "--offload-bytes", MODES[mode], "--reload-interval", "0")
    try:
        singles = [json.dumps(single(r)) for r in records]
        whole = json.dumps(batch(records))
        headers = {"Content-Type": "application/json"}

        def send_single(client: httpx.Client) -> httpx.Response:
            return client.post("/access/v1/evaluation", content=random.choice(singles), headers=headers)

        def send_batch(client: httpx.Client) -> httpx.Response:
            return client.post("/access/v1/evaluations", content=whole, headers=headers)

        _clients(srv.url, [send_single, send_batch], 1.0)  # warm up: compile, caches
        alone = [x for xs in _clients(srv.url, [send_single] * CLIENTS, seconds) for x in xs]
        mixed = _clients(srv.url, [send_single] * (CLIENTS - 1) + [send_batch], seconds)
        mixed_singles = [x for xs in mixed[:-1] for x in xs]
        started = time.perf_counter()
        batches = _clients(srv.url, [send_batch] * CLIENTS, seconds)
        elapsed = time.perf_counter() - started
        done = sum(len(xs) for xs in batches)
    finally:
        srv.stop()
    return {"single_p50": _quantile(alone, 0.5), "single_p99": _quantile(alone, 0.99),
            "singles_per_s": len(alone) / seconds,
            "mixed_p50": _quantile(mixed_singles, 0.5), "mixed_p99": _quantile(mixed_singles, 0.99),
            "batch_s": elapsed / done, "batch_p50": _quantile([x for xs in batches for x in xs], 0.5)}


def run(modes: list[str], seconds: float = 4.0) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="avg-bench-server-"))
    try:
        shutil.copytree(ROOT / "policies", workdir / "policies")
        policy = avgpolicy.load(workdir / "policies")
        records = students(1000)
        base = in_process(policy, records)
        results = {mode: measure(mode, workdir / "policies", records, seconds) for mode in modes}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"baseline": base, "modes": results}


def table(figures: dict[str, Any]) -> str:
    base = figures["baseline"]
    lines = [f"in process: single {base['single'] * 1e6:.0f} µs (json.loads + decide + json.dumps), "
             f"batch of 1,000 {base['batch'] * 1e3:.1f} ms",
             "",
             "| mode | single p50 | single p99 | singles/s | p50 / p99 with a batch client | batch of 1,000 "
             "(8 clients) | batch ratio |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for mode, m in figures["modes"].items():
        lines.append(
            f"| {mode} | {m['single_p50'] * 1e3:.2f} ms ({m['single_p50'] / base['single']:.0f}x) "
            f"| {m['single_p99'] * 1e3:.2f} ms ({m['single_p99'] / base['single']:.0f}x) | {m['singles_per_s']:.0f} "
            f"| {m['mixed_p50'] * 1e3:.2f} / {m['mixed_p99'] * 1e3:.2f} ms "
            f"| {m['batch_s'] * 1e3:.1f} ms | {m['batch_s'] / base['batch']:.2f}x |")
    return "\n".join(lines)


def test_sidecar_over_loopback(benchmark: Any) -> None:
    figures = run(["auto"], seconds=3.0)
    benchmark.extra_info.update({"baseline": figures["baseline"], **figures["modes"]["auto"]})
    benchmark.pedantic(lambda: None, rounds=1)
    print("\n" + table(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the default mode (auto) only")
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    figures = run(["auto"] if args.quick else list(MODES), args.seconds)
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(table(figures))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
