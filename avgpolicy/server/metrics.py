"""Prometheus metrics of the sidecar, kept by hand in the text exposition format (version 0.0.4).

No client library: a few counters, one latency histogram per route and some gauges read from the
PolicyStore when scraped. Labels come from a closed set (route templates, status codes, outcomes), so a
caller cannot grow the number of series.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: upper bounds (seconds) of the latency buckets: 100 µs .. 10 s
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class Metrics:
    """Counters and histograms updated by the middleware and the routes (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = time.time()
        self.requests: dict[tuple[str, str, str], int] = {}          # (route, method, status) -> count
        self.latency: dict[str, list[float]] = {}                     # route -> [bucket counts..., sum, count]
        self.decisions: dict[tuple[str, str], int] = {}               # (endpoint, outcome) -> count
        self.rows_sent = 0
        self.records_left_out = 0
        self.problems: dict[str, int] = {}                            # problem kind -> count

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            key = (route, method, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1
            h = self.latency.get(route)
            if h is None:
                h = self.latency[route] = [0.0] * (len(BUCKETS) + 2)
            i = bisect.bisect_left(BUCKETS, seconds)
            if i < len(BUCKETS):
                h[i] += 1
            h[-2] += seconds
            h[-1] += 1

    def decided(self, endpoint: str, allowed: int, denied: int, errors: int = 0) -> None:
        with self._lock:
            for outcome, n in (("allow", allowed), ("deny", denied), ("error", errors)):
                if n:
                    key = (endpoint, outcome)
                    self.decisions[key] = self.decisions.get(key, 0) + n

    def filtered(self, sent: int, left_out: int) -> None:
        with self._lock:
            self.rows_sent += sent
            self.records_left_out += left_out

    def problem(self, kind: str) -> None:
        with self._lock:
            self.problems[kind] = self.problems.get(kind, 0) + 1

    def render(self, gauges: Callable[[], list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]]) -> str:
        """The exposition text; ``gauges()`` adds (name, type, help, samples) read at scrape time."""
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        with self._lock:
            family("avgpolicy_http_requests_total", "counter", "HTTP requests answered, by route, method and status.")
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f"avgpolicy_http_requests_total"
                           f"{_labels([('route', route), ('method', method), ('status', status)])} {n}")
            family("avgpolicy_http_request_duration_seconds", "histogram",
                   "Time from the request's arrival to the last byte of its response, by route.")
            for route, h in sorted(self.latency.items()):
                cumulative = 0.0
                for bound, n in zip(BUCKETS, h, strict=False):
                    cumulative += n
                    out.append(f"avgpolicy_http_request_duration_seconds_bucket"
                               f"{_labels([('route', route), ('le', repr(bound))])} {int(cumulative)}")
                out.append(f"avgpolicy_http_request_duration_seconds_bucket"
                           f"{_labels([('route', route), ('le', '+Inf')])} {int(h[-1])}")
                out.append(f"avgpolicy_http_request_duration_seconds_sum{_labels([('route', route)])} {h[-2]!r}")
                out.append(f"avgpolicy_http_request_duration_seconds_count{_labels([('route', route)])} {int(h[-1])}")
            family("avgpolicy_decisions_total", "counter",
                   "Decisions made, by endpoint and outcome (allow, deny, error: an item that could not be read).")
            for (endpoint, outcome), n in sorted(self.decisions.items()):
                out.append(f"avgpolicy_decisions_total{_labels([('endpoint', endpoint), ('outcome', outcome)])} {n}")
            family("avgpolicy_filter_rows_total", "counter", "Rows released by /avgpolicy/v1/filter.")
            out.append(f"avgpolicy_filter_rows_total {self.rows_sent}")
            family("avgpolicy_filter_records_left_out_total", "counter",
                   "Records sent to /avgpolicy/v1/filter that released no row.")
            out.append(f"avgpolicy_filter_records_left_out_total {self.records_left_out}")
            family("avgpolicy_problems_total", "counter", "Requests refused with a problem+json answer, by type.")
            for kind, n in sorted(self.problems.items()):
                out.append(f"avgpolicy_problems_total{_labels([('type', kind)])} {n}")
        for name, kind, help_text, samples in gauges():
            family(name, kind, help_text)
            for labels, value in samples:
                out.append(f"{name}{_labels(sorted(labels.items()))} {value!r}")
        return "\n".join(out) + "\n"
