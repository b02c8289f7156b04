"""Command line: avgpolicy check | test | explain | register | demo (exit codes 0, 1, 2)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXIT_OK, EXIT_POLICY, EXIT_USAGE = 0, 1, 2


def _use_colour(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def cmd_check(args: argparse.Namespace) -> int:
    from .errors import sort_key
    from .loader import analyse, read_sources

    try:
        sources = read_sources(args.paths)
    except FileNotFoundError as exc:
        print(f"avgpolicy: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _, diagnostics = analyse(sources)
    diagnostics = sorted(diagnostics, key=lambda d: (not d.is_error, *sort_key(d)))
    errors = sum(d.is_error for d in diagnostics)
    if args.format == "json":
        print(json.dumps({"files": [s.file for s in sources], "errors": errors,
                          "warnings": len(diagnostics) - errors,
                          "diagnostics": [d.to_dict() for d in diagnostics]}, indent=2))
    else:
        texts = {s.file: s.text for s in sources}
        for d in diagnostics:
            print(d.render(texts))
            print()
        print(f"{len(sources)} file{'s' if len(sources) != 1 else ''} checked: "
              f"{errors} error{'s' if errors != 1 else ''}, "
              f"{len(diagnostics) - errors} warning{'s' if len(diagnostics) - errors != 1 else ''}")
    return EXIT_POLICY if errors else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avgpolicy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="parse and validate policy files; exit 1 on errors")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=["human", "json"], default="human")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
