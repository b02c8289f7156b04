"""Problem details (RFC 9457): every error the sidecar answers is an ``application/problem+json`` body.

A route raises ``Problem(status, detail, ...)``; the middleware turns it (and anything unexpected)
into a response. ``type`` is a stable URN per kind of problem, so a client can branch on it without
parsing the human text in ``detail``.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM_JSON = "application/problem+json"
URN = "urn:avgpolicy:problem:"

TITLES = {
    400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    413: "Content Too Large", 415: "Unsupported Media Type", 500: "Internal Server Error",
    501: "Not Implemented", 503: "Service Unavailable",
}


class Problem(Exception):
    """A request the sidecar refuses: rendered as an RFC 9457 problem+json response."""

    def __init__(self, status: int, detail: str, *, kind: str = "bad-request", pointer: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.pointer = pointer
        self.headers = headers or {}
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": URN + self.kind, "title": TITLES.get(self.status, "Error"),
                               "status": self.status, "detail": self.detail}
        if instance:
            out["instance"] = instance
        if self.pointer is not None:
            out["pointer"] = self.pointer  # a JSON Pointer (RFC 6901) to the offending member
        out.update(self.extra)
        return out

    def encode(self, instance: str | None = None) -> bytes:
        return json.dumps(self.body(instance), ensure_ascii=False, default=str).encode("utf-8")


def bad(detail: str, pointer: str | None = None, **extra: Any) -> Problem:
    """A 400 for a malformed request, pointing at the member that is wrong."""
    return Problem(400, detail, kind="bad-request", pointer=pointer, **extra)
