"""Command line: avgpolicy check | test | explain | register | demo | serve (exit codes 0, 1, 2).

One function per subcommand, each a thin layer over the public API. Exit codes:
0 success, 1 policy errors or failed tests, 2 wrong usage (bad arguments,
missing files, unreadable JSON). Colour only on a terminal, never with NO_COLOR.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .policy import Policy

EXIT_OK, EXIT_POLICY, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Wrong usage of the command line: reported on stderr, exit 2."""


def _use_colour(stream: object) -> bool:
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


_ANSI = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


class _Paint:
    """ANSI colours when enabled, plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __getattr__(self, name: str) -> Callable[[str], str]:
        code = _ANSI.get(name)
        if code is None:
            raise AttributeError(name)
        return lambda text: f"\033[{code}m{text}\033[0m" if self.enabled else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _dump(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _load(paths: Sequence[str], fmt: str = "human", **options: Any) -> Policy:
    """Load the set; PolicyError is reported here and becomes SystemExit(1)."""
    from .errors import PolicyError
    from .loader import load

    try:
        return load(*paths, **options)
    except (FileNotFoundError, ValueError) as exc:  # a missing path, no .avg files, an unknown time zone
        raise UsageError(str(exc)) from exc
    except PolicyError as exc:
        if fmt == "json":
            _dump({"loaded": False, "errors": len(exc.errors),
                   "diagnostics": [d.to_dict() for d in exc.diagnostics]})
        else:
            print(str(exc), file=sys.stderr)
        raise SystemExit(EXIT_POLICY) from exc


def _parse_moment(text: str | None, option: str = "--at") -> datetime.date | datetime.datetime | None:
    """``YYYY-MM-DD`` (start of that local day) or an ISO date and time; None means now."""
    if text is None or text == "now":
        return None
    try:
        if len(text) == 10:
            return datetime.date.fromisoformat(text)
        return datetime.datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"{option} {text!r}: write YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]") from exc


# ---------------------------------------------------------------------------
# check

def cmd_check(args: argparse.Namespace) -> int:
    from .errors import sort_key
    from .loader import analyse, read_sources

    try:
        sources = read_sources(args.paths)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from exc
    if not sources:
        raise UsageError("no .avg files found in " + ", ".join(args.paths))
    _, diagnostics = analyse(sources)
    diagnostics = sorted(diagnostics, key=lambda d: (not d.is_error, *sort_key(d)))
    errors = sum(d.is_error for d in diagnostics)
    warnings = len(diagnostics) - errors
    if args.format == "json":
        _dump({"files": [s.file for s in sources], "errors": errors, "warnings": warnings,
               "diagnostics": [d.to_dict() for d in diagnostics]})
    else:
        paint = _Paint(_use_colour(sys.stdout))
        texts = {s.file: s.text for s in sources}
        for d in diagnostics:
            print(d.render(texts))
            print()
        summary = (f"{_plural(len(sources), 'file')} checked: {_plural(errors, 'error')}, "
                   f"{_plural(warnings, 'warning')}")
        print(paint.red(summary) if errors else paint.green(summary))
    return EXIT_POLICY if errors else EXIT_OK


# ---------------------------------------------------------------------------
# test

def _rule_location(policy: Policy, name: str) -> str:
    for r in policy.model.rules:
        if r.name == name and r.span is not None:
            return f"{r.span.file}:{r.span.line}"
    return ""


def cmd_test(args: argparse.Namespace) -> int:
    from .testing import run

    policy = _load(args.paths, args.format)
    report = run(policy)
    if args.format == "json":
        data = report.to_dict()
        data["coverage"]["untested"] = [{"rule": r, "location": _rule_location(policy, r)}
                                        for r in report.untested]
        data["summary"] = report.summary()
        _dump(data)
    else:
        paint = _Paint(_use_colour(sys.stdout))
        for result in report.results:
            if result.passed:
                if args.verbose:
                    print(f"{paint.green('PASS')} {result.name}  {paint.dim(result.where())}")
                continue
            print(f"{paint.red('FAIL')} {result.name}  {paint.dim(result.where())}")
            print("\n".join(result.describe_failure().splitlines()[1:]))
        if not report.results:
            print(paint.yellow("no test blocks found"))
        if args.coverage:
            exercised = len(report.rules) - len(report.untested)
            print(f"rule coverage: {exercised}/{len(report.rules)} rules exercised "
                  f"({report.coverage:.0%})")
            for name in report.untested:
                print(f"  {paint.yellow('untested')} {name}  {paint.dim(_rule_location(policy, name))}")
        summary = f"{_plural(len(report.results) - len(report.failures), 'test')} passed, " \
                  f"{len(report.failures)} failed"
        print(paint.red(summary) if report.failures else paint.green(summary))
    return EXIT_POLICY if report.failures else EXIT_OK


# ---------------------------------------------------------------------------
# explain

def _convert_value(value: Any, field_type: str | None) -> Any:
    if field_type == "date" and isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value)
        except ValueError:
            return value  # stays ill-typed: the decision denies it with a reason
    if field_type == "set" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return value


def _convert_consent(value: Any) -> Any:
    from .decision import Consent

    if not isinstance(value, dict):
        return value
    try:
        given = datetime.date.fromisoformat(value["given"])
        withdrawn = value.get("withdrawn")
        withdrawn = datetime.date.fromisoformat(withdrawn) if withdrawn is not None else None
        return Consent(by=value["by"], given=given, withdrawn=withdrawn)
    except (KeyError, TypeError, ValueError):
        return value  # passed on as written: an invalid consent is denied with a reason


def student_from_json(data: Any, policy: Policy) -> dict[str, Any]:
    """A student record from parsed JSON: ISO date strings become dates and lists become sets
    where the catalogue says so; ``consents`` maps a topic to ``{by, given, withdrawn}``."""
    if not isinstance(data, dict):
        raise UsageError("the student JSON must be an object: {\"field\": value, ..., \"consents\": {...}}")
    cat = policy.model.catalogue
    subject = cat.subject_fields
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == "consents" and isinstance(value, dict):
            out[key] = {topic: _convert_consent(c) for topic, c in value.items()}
            continue
        info = subject.get(key) or cat.fields.get(key)
        out[key] = _convert_value(value, info.type if info else None)
    return out


def _read_json(path: str) -> Any:
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid JSON: {exc}") from exc
    except ValueError as exc:  # an integer beyond Python's 4,300-digit limit for int(str)
        raise UsageError(f"{path} holds a number too long to read ({exc}); student values are short") from None
    except RecursionError:
        raise UsageError(f"{path} is nested too deeply to read; a student record is an object of plain "
                         "values, lists and a consents object") from None


def cmd_explain(args: argparse.Namespace) -> int:
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    if not fields:
        raise UsageError("--fields needs at least one field, e.g. leerling.roepnaam,leerling.eckid")
    at = _parse_moment(args.at)
    raw = _read_json(args.student)
    policy = _load(args.paths, args.format)
    student = student_from_json(raw, policy)
    try:
        policy.check_names(args.partner, args.purpose)
    except ValueError as exc:  # UnknownNameError: a misspelt name is an error, not a quiet denial
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_POLICY
    try:
        decision = policy.decide(partner=args.partner, purpose=args.purpose, fields=fields,
                                 student=student, at=at)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if args.format == "json":
        _dump(decision.to_dict())
    else:
        paint = _Paint(_use_colour(sys.stdout))
        text = decision.explain()
        head, _, rest = text.partition("\n")
        print((paint.green(head) if decision.allowed else paint.red(head)) + ("\n" + rest if rest else ""))
    return EXIT_OK


# ---------------------------------------------------------------------------
# register

def cmd_register(args: argparse.Namespace) -> int:
    from .register import build_register, incomplete_rows, render_data

    today = _parse_moment(args.today, "--today")
    if isinstance(today, datetime.datetime):
        today = today.date()
    policy = _load(args.paths)
    reg = build_register(policy, today=today)
    text = render_data(reg, args.format)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    gaps = incomplete_rows(reg)
    if args.strict and gaps:  # the register is written all the same; the exit code fails the build
        print(f"register: {len(gaps)} rows lack what GDPR art. 30(1) asks for:", file=sys.stderr)
        for gap in gaps:
            print(f"  {gap}", file=sys.stderr)
        return EXIT_POLICY
    return EXIT_OK


# ---------------------------------------------------------------------------
# demo

def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.students < 1:
        raise UsageError("--students must be at least 1")
    at = _parse_moment(args.at) if args.at else None
    progress: TextIO | None = sys.stderr if _use_colour(sys.stderr) else None
    run_demo(students=args.students, seed=args.seed, at=at, out=sys.stdout, progress=progress,
             paths=args.paths or None, folder=args.folder, bulk=not args.no_bulk)
    return EXIT_OK


# ---------------------------------------------------------------------------
# serve

def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server import serve
    except ImportError as exc:
        raise UsageError(f"the sidecar needs the server extra: pip install 'avgpolicy[server]' ({exc})") from exc
    from .errors import PolicyError

    for option, path in (("--token-file", args.token_file), ("--pseudonym-key-file", args.pseudonym_key_file)):
        if path is not None and not os.path.isfile(path):
            raise UsageError(f"{option} {path}: no such file")
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535")
    try:
        serve(args.paths, host=args.host, port=args.port, export_log=args.export_log, token_file=args.token_file,
              pseudonym_key_file=args.pseudonym_key_file, timezone=args.timezone,
              reload_interval=args.reload_interval, max_body=args.max_body, offload_bytes=args.offload_bytes,
              public_url=args.public_url, access_log=args.access_log)
    except PolicyError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_POLICY
    except (OSError, ValueError, TypeError) as exc:  # no .avg files, address in use, a bad token file
        raise UsageError(str(exc)) from exc
    return EXIT_OK


# ---------------------------------------------------------------------------
# the export log: exports, exports verify, access, dashboard

def _open_log(target: str) -> Any:
    """An existing export log (a file must exist: reading never creates one); ExportLogError -> usage."""
    from .exports import ExportLog, ExportLogError

    if not target.startswith(("postgresql://", "postgres://")) and not os.path.isfile(target):
        raise UsageError(f"no such export log: {target}")
    try:
        return ExportLog(target)
    except ExportLogError as exc:
        raise UsageError(str(exc)) from exc


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet does not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def cmd_exports(args: argparse.Namespace) -> int:
    import csv

    from .exports import ExportLogError

    if args.target[:1] == ["verify"] and len(args.target) == 2:
        return _cmd_exports_verify(args.target[1], args.format)
    if len(args.target) != 1:
        raise UsageError("write `avgpolicy exports LOG [options]` or `avgpolicy exports verify LOG`")
    log = _open_log(args.target[0])
    try:
        since, until = _parse_moment(args.since, "--since"), _parse_moment(args.until, "--until")
        records = log.exports(partner=args.partner, actor=args.actor, channel=args.channel, since=since,
                              until=until, keys=args.format == "json")
    except ExportLogError as exc:
        raise UsageError(str(exc)) from exc
    if args.format == "json":
        _dump([r.to_dict() for r in records])
        return EXIT_OK
    columns = ("id", "started", "status", "partner", "purpose", "actor", "channel", "students", "left_out",
               "fields_sent")
    rows = [(r.id, r.started.strftime("%Y-%m-%d %H:%M:%S"), r.status, r.partner, r.purpose, r.actor, r.channel,
             r.students, r.left_out, ",".join(r.fields_sent)) for r in records]
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(c) for c in row] for row in rows)
        return EXIT_OK
    shown = [tuple(str(c) for c in row) for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in shown]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for r in shown:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    unfinished = sum(1 for r in records if r.status == "started")
    print(f"{_plural(len(records), 'export')} (times UTC)"
          + (f"; {unfinished} unfinished: started, never completed (which students they sent is unknown)"
             if unfinished else ""))
    return EXIT_OK


def _cmd_exports_verify(target: str, fmt: str) -> int:
    from .exports import ExportLogError

    log = _open_log(target)
    try:
        report = log.verify()
    except ExportLogError as exc:
        raise UsageError(str(exc)) from exc
    if fmt == "json":
        _dump(report.to_dict())
    else:
        paint = _Paint(_use_colour(sys.stdout))
        for p in report.problems:
            label = paint.yellow("unfinished") if p.kind == "unfinished" else paint.red(p.kind)
            print(f"{label} {p.id}: {p.message}")
        tampered = sum(1 for p in report.problems if p.kind != "unfinished")
        summary = (f"{_plural(report.entries, 'entry').replace('entrys', 'entries')}, "
                   f"{_plural(report.exports, 'export')}: "
                   + ("chain intact" if report.ok else f"{_plural(tampered, 'problem')} found")
                   + (f", {len(report.unfinished)} unfinished" if report.unfinished else "")
                   + f"; head {report.head or '-'}")
        print(paint.green(summary) if report.ok else paint.red(summary))
    return EXIT_OK if report.ok else EXIT_POLICY


def _write_or_print(text: str, output: str | None) -> None:
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from exc
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_access(args: argparse.Namespace) -> int:
    import re

    from .exports import ExportLogError
    from .exports.access import render_access

    log = _open_log(args.log)
    key: str | int = args.student
    try:
        text = render_access(log, key, args.format, lang=args.lang)
        if re.fullmatch(r"-?[0-9]{1,30}", args.student) and not log.student(args.student):
            text = render_access(log, int(args.student), args.format, lang=args.lang)  # an int key field
    except ExportLogError as exc:
        raise UsageError(str(exc)) from exc
    _write_or_print(text, args.output)
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    """Print the query (or a CREATE VIEW) of a request for a SIS that is not written in Python."""
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    if not fields:
        raise UsageError("--fields needs at least one field, e.g. leerling.roepnaam,leerling.eckid")
    at = _parse_moment(args.at)
    policy = _load(args.paths)
    try:
        policy.check_names(args.partner, args.purpose)
    except ValueError as exc:  # UnknownNameError: a misspelt name is an error, not a quiet denial
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_POLICY
    from .sql import NotTranslatable
    consents: dict[str, str] = {"table": args.consents}
    if args.key:
        consents["key"] = args.key
    try:
        plan = policy.plan(args.partner, args.purpose, fields, at=at)
        if args.view:
            text = plan.to_view(args.view, args.dialect, table=args.table, consents=consents)
        else:
            text = _query_text(plan, args.dialect, args.table, consents)
    except NotTranslatable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_POLICY
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    print(f"-- avgpolicy {plan.kind} plan: partner {args.partner}, purpose {args.purpose}, "
          f"decision day {plan.day.isoformat()} (re-create it every day); policy {policy.version}")
    print(text + ";")
    return EXIT_OK


def _query_text(plan: Any, dialect: str, table: str, consents: dict[str, str]) -> str:
    plan.refuse_pseudonyms()  # a printed query runs without plan.run: it must not send the value itself
    sql, params = plan.to_sql(dialect, table=table, consents=consents, inline=True, labels=True)
    assert not params
    return str(sql)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .exports import ExportLogError
    from .exports.dashboard import render_dashboard

    today = _parse_moment(args.today, "--today")
    if isinstance(today, datetime.datetime):
        today = today.date()
    policy = _load(args.paths)
    log = _open_log(args.log)
    try:
        text = render_dashboard(policy, log, today=today)
    except ExportLogError as exc:
        raise UsageError(str(exc)) from exc
    output = None if args.output == "-" else args.output
    _write_or_print(text, output)
    if output:
        print(f"dashboard written to {output}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------

def _package_version() -> str:
    from . import __version__
    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avgpolicy", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version",
                        version=f"avgpolicy {_package_version()} (policy language v2)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="parse and validate policy files; exit 1 on errors")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".avg files and folders")
    p.add_argument("--format", choices=["human", "json"], default="human")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("test", help="run the `test` blocks of a policy set; exit 1 on failures")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--coverage", action="store_true", help="list the rules no test exercised")
    p.add_argument("-v", "--verbose", action="store_true", help="list passing tests too")
    p.add_argument("--format", choices=["human", "json"], default="human")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("explain", help="decide one request and explain it field by field")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--partner", required=True)
    p.add_argument("--purpose", required=True)
    p.add_argument("--fields", required=True, help="comma-separated, e.g. leerling.roepnaam,leerling.bsn")
    p.add_argument("--student", required=True, metavar="FILE.json", help="the student record as JSON ('-': stdin)")
    p.add_argument("--at", metavar="WHEN", help="YYYY-MM-DD or YYYY-MM-DDTHH:MM (default: now)")
    p.add_argument("--format", choices=["human", "json"], default="human")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("register", help="the sharing overview / processing register")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=["md", "csv", "json", "html"], default="md")
    p.add_argument("--today", metavar="DATE", help="the date the register describes (default: today)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a row lacks what GDPR art. 30(1) asks for (retention, DPO, transfer mechanism)")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("demo", help="the bundled example school board, end to end")
    p.add_argument("paths", nargs="*", metavar="PATH", help="another policy set (default: the bundled one)")
    p.add_argument("--students", type=int, default=5000, help="how many synthetic students (default 5000)")
    p.add_argument("--seed", type=int, default=2025, help="random seed (default 2025)")
    p.add_argument("--at", metavar="WHEN",
                   help="the moment of the feeds (default: 2026-03-02T10:00 for the bundled set; for a set of "
                        "your own, today or the day when most of its agreements and rules are in force)")
    p.add_argument("--folder", metavar="DIR",
                   help="where the export log, the dashboard and the art. 15 answer go (default: a new temporary "
                        "folder, printed at the end)")
    p.add_argument("--no-bulk", action="store_true", help="skip the bulk feed inside DuckDB")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="the sidecar: AuthZEN and avgpolicy endpoints over HTTP (extra `server`)")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".avg files and folders (reloaded when they change)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8181, help="TCP port (default 8181; 0: any free port)")
    p.add_argument("--export-log", metavar="LOG", help="record every /avgpolicy/v1/filter batch in this export log "
                   "(an SQLite file or a postgresql:// URL)")
    p.add_argument("--token-file", metavar="F", help="every request needs `Authorization: Bearer <the token in F>`")
    p.add_argument("--pseudonym-key-file", metavar="F", help="the secret for `as pseudonym` (raw bytes of F)")
    p.add_argument("--timezone", help="the policy time zone (default Europe/Amsterdam)")
    p.add_argument("--reload-interval", type=float, default=2.0, metavar="SECONDS",
                   help="how often to look for changed policy files (default 2; 0: never)")
    p.add_argument("--max-body", type=int, metavar="BYTES", help="largest request body accepted (default 8 MiB)")
    p.add_argument("--offload-bytes", type=int, metavar="BYTES",
                   help="decide bodies larger than this in a worker thread (default 16384; -1: never)")
    p.add_argument("--public-url", metavar="URL", help="the base URL the discovery document names "
                   "(default: the URL the request came in on)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("exports", help="the export log: list exports, or `exports verify LOG` to check its chain")
    p.add_argument("target", nargs="+", metavar="LOG", help="the export log (an SQLite file or a postgresql:// URL); "
                   "`verify LOG` checks every record's hash chain (exit 1 when a record was edited, removed, "
                   "inserted or reordered)")
    p.add_argument("--partner", help="only exports to this partner")
    p.add_argument("--actor", help="only exports by this actor (staff member or system)")
    p.add_argument("--channel", help="only exports through this channel (e.g. manual)")
    p.add_argument("--since", metavar="DATE", help="only exports started on or after DATE (UTC)")
    p.add_argument("--until", metavar="DATE", help="only exports started before DATE (UTC)")
    p.add_argument("--format", choices=["table", "json", "csv", "human"], default="table",
                   help="table (default), json (with the students' keys) or csv")
    p.set_defaults(func=cmd_exports)

    p = sub.add_parser("access", help="GDPR art. 15: which organisations received data about one student")
    p.add_argument("log", metavar="LOG", help="the export log")
    p.add_argument("--student", required=True, metavar="KEY", help="the student's key (e.g. the leerlingnummer)")
    p.add_argument("--format", choices=["md", "json", "html"], default="md")
    p.add_argument("--lang", choices=["en", "nl"], default="en", help="the language of the report (default en)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=cmd_access)

    p = sub.add_parser("sql", help="the SQL query (or CREATE VIEW) of a request, for a SIS not written in Python")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--partner", required=True)
    p.add_argument("--purpose", required=True)
    p.add_argument("--fields", required=True, help="comma-separated, e.g. leerling.roepnaam,leerling.leerjaar")
    p.add_argument("--at", metavar="WHEN", help="the decision day: YYYY-MM-DD or YYYY-MM-DDTHH:MM (default: now)")
    p.add_argument("--dialect", required=True, choices=["duckdb", "sqlite", "postgres", "spark"])
    p.add_argument("--table", required=True, help="the student table (columns named after the fields)")
    p.add_argument("--view", metavar="NAME", help="print CREATE VIEW NAME AS ... instead of the query")
    p.add_argument("--consents", default="consents", metavar="TABLE",
                   help="the consent table (student, topic, party, given, withdrawn; default: consents)")
    p.add_argument("--key", metavar="COLUMN", help="the student table's key column (default: the catalogue's key)")
    p.set_defaults(func=cmd_sql)

    p = sub.add_parser("dashboard", help="one HTML page: the register and the export log's real traffic")
    p.add_argument("paths", nargs="+", metavar="PATH", help="the policy set")
    p.add_argument("--log", required=True, metavar="LOG", help="the export log")
    p.add_argument("--today", metavar="DATE", help="the date the dashboard describes (default: today)")
    p.add_argument("-o", "--output", metavar="FILE", default="dashboard.html",
                   help="where to write the page (default dashboard.html; '-': stdout)")
    p.set_defaults(func=cmd_dashboard)
    return parser


def main(
argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"avgpolicy {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:
        return int(exc.code or 0)
    except BrokenPipeError:  # `avgpolicy register ... | head`
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
