"""The sidecar's ASGI app: routes translate JSON to calls of the public API and back, nothing more.

Every request is answered from one ``Policy`` taken from the ``PolicyStore`` when the request starts,
so a batch is decided by one complete version even while the folder is reloaded. Evaluation runs on
the event loop for small bodies and in a worker thread for large ones (``offload_bytes``; see
docs/performance.md for how the threshold was chosen), so a batch of thousands never stalls the
single evaluations queued behind it.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from . import openapi
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .problems import PROBLEM_JSON, Problem, bad
from .shapes import (
    ContextMemo,
    member,
    need_object,
    optional_str,
    parse_fields,
    parse_json,
    parse_moment,
    read_evaluation,
    student_record,
)

if TYPE_CHECKING:
    from ..decision import Decision
    from ..policy import Policy
    from ..store import PolicyStore

log = logging.getLogger("avgpolicy.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MAX_BODY = 8 * 1024 * 1024  # bytes; a batch of 1,000 evaluations with full records is ~0.5 MB
DEFAULT_OFFLOAD_BYTES = 16 * 1024   # bodies larger than this are evaluated in a worker thread
NO_FIELDS = "no_fields"  # the reason code of a request that names no field
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")

ROUTES = {
    "/access/v1/evaluation", "/access/v1/evaluations", "/.well-known/authzen-configuration",
    "/avgpolicy/v1/decide", "/avgpolicy/v1/filter", "/avgpolicy/v1/plan", "/avgpolicy/v1/register",
    "/healthz", "/readyz", "/metrics", "/openapi.json",
}
REGISTER_TYPES = {"json": "application/json", "html": "text/html; charset=utf-8",
                  "md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:  # date, datetime
        return isoformat()
    return str(value)


def encode(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode("utf-8")


def json_response(data: Any, status: int = 200) -> Response:
    return Response(encode(data), status_code=status, media_type="application/json")


def _read_token(path: str | os.PathLike[str]) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"{path}: the token file must hold one token (no spaces), e.g. from "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return token


class Sidecar:
    """What the routes share: the store, the settings, the metrics, a memo of decision contexts."""

    def __init__(self, store: PolicyStore, *, token_file: str | os.PathLike[str] | None = None,
                 export_log: Any = None, max_body: int = DEFAULT_MAX_BODY,
                 offload_bytes: int | None = DEFAULT_OFFLOAD_BYTES, public_url: str | None = None) -> None:
        if not isinstance(max_body, int) or max_body < 1024:
            raise ValueError("max_body must be at least 1024 bytes")
        self.store = store
        self.token_file = token_file
        self.token: bytes | None = _read_token(token_file).encode() if token_file is not None else None
        self._token_stat: tuple[int, int] | None = self._stat_token()
        self.token_checked = time.perf_counter()
        self.export_log = export_log
        self.max_body = max_body
        self.offload_bytes = offload_bytes
        self.public_url = public_url.rstrip("/") if public_url else None
        self.metrics = Metrics()
        self._contexts: dict[int, tuple[Decision, dict[str, Any]]] = {}
        self._ids = itertools.count()
        self._id_prefix = uuid.uuid4().hex[:12]

    # -- the bearer token ------------------------------------------------------

    def _stat_token(self) -> tuple[int, int] | None:
        if self.token_file is None:
            return None
        try:
            st = os.stat(self.token_file)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def refresh_token(self) -> None:
        """Re-read the token file when it changed (rotation without a restart); a broken file keeps the old."""
        if self.token_file is None:
            return
        stat = self._stat_token()
        if stat is None or stat == self._token_stat:
            return
        try:
            self.token = _read_token(self.token_file).encode()
            self._token_stat = stat
            log.info("bearer token reloaded from %s", self.token_file)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("bearer token file not reloaded (keeping the previous token): %s", exc)

    def authorized(self, header: bytes | None) -> bool:
        token = self.token
        if token is None:
            return True
        if header is None or header[:7].lower() != b"bearer ":
            return False
        return hmac.compare_digest(header[7:].strip(), token)

    # -- decisions ------------------------------------------------------------

    def decision_id(self) -> str:
        """Unique per decision within this process (a per-process random prefix and a counter)."""
        return f"{self._id_prefix}-{next(self._ids)}"

    def fields_context(self, decision: Decision) -> dict[str, Any]:
        """``{field: FieldDecision.to_dict()}``, built once per distinct (shared, immutable) Decision."""
        hit = self._contexts.get(id(decision))
        if hit is not None and hit[0] is decision:
            return hit[1]
        fields = {ref: fd.to_dict() for ref, fd in decision.fields.items()}
        if len(self._contexts) >= 4096:
            self._contexts.clear()
        self._contexts[id(decision)] = (decision, fields)  # holds the decision: its id is not reused
        return fields

    def answer(self, decision: Decision) -> dict[str, Any]:
        return {"decision": decision.allowed,
                "context": {"decision_id": self.decision_id(), "policy_version": decision.policy_version,
                            "fields": self.fields_context(decision)}}

    def no_fields(self, policy: Policy, pointer: str) -> dict[str, Any]:
        """A request that names no field (AuthZEN's context is optional): denied, saying what to send."""
        reason = {"code": NO_FIELDS, "message": f"{pointer} names no field, so nothing may be sent: ask for the "
                  "fields the partner would receive, e.g. {\"fields\": [\"leerling.roepnaam\"]}",
                  "field": None, "rule": None, "location": None}
        return {"decision": False, "context": {"decision_id": self.decision_id(), "policy_version": policy.version,
                                               "fields": {}, "reasons": [reason]}}

    def failed(self, policy: Policy, problem: Problem) -> dict[str, Any]:
        """An evaluation item that could not be read: denied, with what was wrong (AuthZEN 7.2.1)."""
        error: dict[str, Any] = {"status": 400, "message": problem.detail}
        if problem.pointer is not None:
            error["pointer"] = problem.pointer
        return {"decision": False, "context": {"decision_id": self.decision_id(), "policy_version": policy.version,
                                               "error": error}}


def _decide(policy: Policy, partner: str, purpose: str, fields: list[str], record: Any, at: Any) -> Decision:
    try:
        return policy.decide(partner, purpose, fields, record, at=at)
    except (TypeError, ValueError, OverflowError) as exc:  # a call wrong in itself (decide never raises on data)
        raise bad(str(exc)) from None


def _evaluate_item(sidecar: Sidecar, policy: Policy, item: Any, defaults: dict[str, Any], pointer: str,
                   contexts: ContextMemo) -> dict[str, Any]:
    try:
        if not isinstance(item, dict):
            raise bad(f"{pointer} must be an object (one evaluation), not {type(item).__name__}", pointer)
        ev = read_evaluation(item, defaults, policy, pointer, contexts)
        if ev.fields is None:
            return sidecar.no_fields(policy, f"{pointer}/context/fields")
        decision = _decide(policy, ev.partner, ev.purpose, ev.fields, ev.record, ev.at)
    except Problem as problem:
        return sidecar.failed(policy, problem)
    return sidecar.answer(decision)


def evaluate_one(sidecar: Sidecar, body: Any) -> dict[str, Any]:
    """POST /access/v1/evaluation: a malformed request is a 400, an unknown name a denial with reasons."""
    policy = sidecar.store.policy
    request = need_object(body, "", "an AuthZEN access evaluation request")
    ev = read_evaluation(request, {}, policy, "", ContextMemo())
    if ev.fields is None:
        sidecar.metrics.decided("evaluation", 0, 1)
        return sidecar.no_fields(policy, "/context/fields")
    decision = _decide(policy, ev.partner, ev.purpose, ev.fields, ev.record, ev.at)
    sidecar.metrics.decided("evaluation", decision.allowed, not decision.allowed)
    return sidecar.answer(decision)


def evaluate_many(sidecar: Sidecar, body: Any) -> dict[str, Any]:
    """POST /access/v1/evaluations: results in request order; each item fails closed on its own."""
    policy = sidecar.store.policy
    request = need_object(body, "", "an AuthZEN access evaluations request")
    evaluations = request.get("evaluations")
    if evaluations is None or evaluations == []:  # AuthZEN 7.1: behaves as a single evaluation
        answer = evaluate_one(sidecar, {k: v for k, v in request.items() if k != "evaluations"})
        return answer
    if not isinstance(evaluations, list):
        raise bad("/evaluations must be an array of evaluation objects", "/evaluations")
    options = request.get("options")
    semantic = "execute_all"
    if options is not None:
        options = need_object(options, "/options", "evaluation options")
        value = options.get("evaluations_semantic", "execute_all")
        if value not in SEMANTICS:
            raise bad(f"/options/evaluations_semantic must be one of {', '.join(SEMANTICS)}, not {value!r}",
                      "/options/evaluations_semantic")
        semantic = value
    defaults = {k: request[k] for k in ("subject", "action", "resource", "context") if k in request}
    contexts = ContextMemo()
    results = []
    allowed = denied = errors = 0
    stop_on = False if semantic == "deny_on_first_deny" else True if semantic == "permit_on_first_permit" else None
    for i, item in enumerate(evaluations):
        result = _evaluate_item(sidecar, policy, item, defaults, f"/evaluations/{i}", contexts)
        results.append(result)
        if "error" in result["context"]:
            errors += 1
        elif result["decision"]:
            allowed += 1
        else:
            denied += 1
        if result["decision"] is stop_on:
            break
    sidecar.metrics.decided("evaluations", allowed, denied, errors)
    return {"evaluations": results}


def decide(sidecar: Sidecar, body: Any) -> dict[str, Any]:
    """POST /avgpolicy/v1/decide: ``Decision.to_dict()`` with its decision id."""
    policy = sidecar.store.policy
    request = need_object(body, "", "{partner, purpose, fields, student, at}")
    partner = member(request, "partner", "", "the partner's name")
    purpose = member(request, "purpose", "", "the purpose's name")
    fields = parse_fields(request.get("fields"), "/fields")
    if "student" not in request:
        raise bad("/student is missing: the student record, {\"id\": ..., \"roepnaam\": ..., ...}", "/student")
    record = student_record(request["student"], policy, "/student")
    at = parse_moment(request.get("at"), "/at")
    decision = _decide(policy, partner, purpose, fields, record, at)
    sidecar.metrics.decided("decide", decision.allowed, not decision.allowed)
    out = decision.to_dict()
    out["decision_id"] = sidecar.decision_id()
    return out


def filter_rows(sidecar: Sidecar, body: Any) -> dict[str, Any]:
    """POST /avgpolicy/v1/filter: records in, permitted rows out (recorded when an export log is set)."""
    policy = sidecar.store.policy
    request = need_object(body, "", "{partner, purpose, fields, records, at, actor, channel}")
    partner = member(request, "partner", "", "the partner's name")
    purpose = member(request, "purpose", "", "the purpose's name")
    fields = parse_fields(request.get("fields"), "/fields")
    raw = member(request, "records", "", "the student records", kind=list)
    records = [student_record(r, policy, f"/records/{i}") for i, r in enumerate(raw)]
    at = parse_moment(request.get("at"), "/at")
    actor = optional_str(request, "actor", "", "who exports (a staff member or a job)")
    channel = optional_str(request, "channel", "", "how the data leaves, e.g. \"nightly-feed\"")
    out: dict[str, Any] = {"policy_version": policy.version}
    import avgpolicy

    log_error: type[BaseException] = getattr(avgpolicy, "ExportLogError", _Never)
    try:
        if sidecar.export_log is not None:
            rows, export_id = _export(policy, sidecar.export_log, partner, purpose, fields, records, at, actor,
                                      channel)
            out["export_id"] = export_id
        else:
            rows = list(policy.filter(partner, purpose, fields, records, at=at))
    except log_error as exc:  # the record could not be written: nothing was released
        log.error("export log not writable, nothing released: %s", exc)
        raise Problem(503, f"the export log cannot be written, so nothing was released: {exc}",
                      kind="export-log-unavailable") from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise bad(str(exc)) from None
    out["rows"] = rows
    out["sent"] = len(rows)
    out["left_out"] = len(records) - len(rows)
    sidecar.metrics.filtered(len(rows), len(records) - len(rows))
    return out


def _export(policy: Policy, export_log: Any, partner: str, purpose: str, fields: list[str], records: list[Any],
            at: Any, actor: str | None, channel: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The batch through ``Policy.export``: the record is written before any row is released."""
    if actor is None:
        raise bad("/actor is missing: this sidecar records every export, so say who exports "
                  "(a staff member or a job name)", "/actor")
    with policy.export(partner, purpose, fields, at=at, actor=actor, channel=channel or "sidecar",
                       log=export_log) as export:
        rows = list(export.rows(records))
    return rows, export.id


class _Never(Exception):
    """Stands in for an exception class this avgpolicy does not have (never raised)."""


def plan(sidecar: Sidecar, body: Any) -> dict[str, Any]:
    """POST /avgpolicy/v1/plan: the SQL of ``policy.plan(...).to_sql(...)`` for one dialect."""
    policy = sidecar.store.policy
    request = need_object(body, "", "{partner, purpose, fields, at, dialect, table, columns, consents}")
    partner = member(request, "partner", "", "the partner's name")
    purpose = member(request, "purpose", "", "the purpose's name")
    fields = parse_fields(request.get("fields"), "/fields")
    at = parse_moment(request.get("at"), "/at")
    dialect = member(request, "dialect", "", "duckdb, sqlite, postgres or spark")
    table = member(request, "table", "", "the table (or view) holding one row per student")
    columns = request.get("columns")
    if columns is not None:
        columns = need_object(columns, "/columns", "field -> column name")
        for ref, col in columns.items():
            if type(col) is not str or not col:
                raise bad(f"/columns/{ref} must be a column name", f"/columns/{ref}")
    consents = request.get("consents")
    if consents is not None and not isinstance(consents, (str, dict)):
        raise bad("/consents must be a table name or an object naming the table and its columns", "/consents")
    make_plan = getattr(policy, "plan", None)
    if make_plan is None:
        raise Problem(501, "SQL pushdown (Policy.plan) is not part of this avgpolicy yet", kind="not-implemented")
    try:
        import avgpolicy

        not_translatable: type[BaseException] = getattr(avgpolicy, "NotTranslatable", _Never)
    except ImportError:  # pragma: no cover - the sql extra is missing
        not_translatable = _Never
    try:
        the_plan = make_plan(partner, purpose, fields, at=at)
        pseudonyms = [fp.ref for fp in the_plan.field_plans if not fp.never
                      and any(b.transform == "pseudonym" for b in fp.branches)]
        if pseudonyms:  # SQL would select the raw value: plan.run pseudonymises in Python, a caller's SQL cannot
            raise Problem(422, f"{pseudonyms[0]} is released `as pseudonym`, which SQL cannot compute (the key "
                          "never reaches the database): use /avgpolicy/v1/filter for it", kind="not-translatable",
                          pointer="/fields")
        kwargs: dict[str, Any] = {"dialect": dialect, "table": table}
        if columns is not None:
            kwargs["columns"] = columns
        if consents is not None:
            kwargs["consents"] = consents
        sql, params = the_plan.to_sql(**kwargs)
    except ImportError as exc:
        raise Problem(501, f"SQL pushdown needs the sql extra (pip install 'avgpolicy[sql]'): {exc}",
                      kind="not-implemented") from None
    except not_translatable as exc:
        raise Problem(422, str(exc), kind="not-translatable") from None
    except (TypeError, ValueError, OverflowError, KeyError) as exc:
        raise bad(str(exc)) from None
    return {"policy_version": policy.version, "kind": the_plan.kind, "dialect": dialect,
            "fields": list(the_plan.fields), "sql": sql, "params": params}


def _error_summary(exc: BaseException) -> dict[str, Any]:
    diagnostics = getattr(exc, "diagnostics", None)
    out: dict[str, Any] = {"type": type(exc).__name__}
    if diagnostics:
        errors = [d for d in diagnostics if getattr(d, "is_error", True)]
        out["message"] = "; ".join(d.headline() for d in errors[:3]) + (
            f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
        out["diagnostics"] = [d.to_dict() for d in errors[:50]]
    else:
        out["message"] = str(exc)
    return out


class Middleware:
    """Pure ASGI: bearer token, request size, X-Request-ID, metrics, and problem+json for the unexpected."""

    def __init__(self, app: Any, sidecar: Sidecar) -> None:
        self.app = app
        self.sidecar = sidecar

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sidecar = self.sidecar
        request_id = auth = length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value
            elif name == b"authorization":
                auth = value
            elif name == b"content-length":
                length = value
        state = {"status": 500, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["started"] = True
                if request_id is not None:
                    message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        path = scope["path"]
        route = path if path in ROUTES else "other"
        if sidecar.token_file is not None and started - sidecar.token_checked > 1.0:
            sidecar.token_checked = started  # a changed token file is read at most once a second
            sidecar.refresh_token()
        try:
            if not sidecar.authorized(auth):
                problem = Problem(401, "send `Authorization: Bearer <token>` with the token of --token-file",
                                  kind="unauthorized", headers={"www-authenticate": 'Bearer realm="avgpolicy"'})
                await _send_problem(send_wrapper, problem, path)
                sidecar.metrics.problem(problem.kind)
                return
            if length is not None and (not length.isdigit() or int(length) > sidecar.max_body):
                problem = Problem(413, f"the body is larger than this sidecar accepts ({sidecar.max_body} bytes); "
                                  "send smaller batches or start it with a larger --max-body", kind="too-large")
                await _send_problem(send_wrapper, problem, path)
                sidecar.metrics.problem(problem.kind)
                return
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unexpected error answering %s %s", scope.get("method"), path)
            if not state["started"]:
                await _send_problem(send_wrapper, Problem(500, "an unexpected error; it is in the sidecar's log",
                                                          kind="internal"), path)
        finally:
            sidecar.metrics.observe(route, scope.get("method", ""), int(state["status"]),  # type: ignore[call-overload]
                                    time.perf_counter() - started)


async def _send_problem(send: Send, problem: Problem, path: str) -> None:
    body = problem.encode(path)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(store: PolicyStore, *, token_file: str | os.PathLike[str] | None = None, export_log: Any = None,
               max_body: int = DEFAULT_MAX_BODY, offload_bytes: int | None = DEFAULT_OFFLOAD_BYTES,
               public_url: str | None = None, title: str = "avgpolicy sidecar") -> FastAPI:
    """The ASGI app serving ``store``'s current policy (see docs/sidecar.md).

    ``offload_bytes``: bodies larger than this are parsed, decided and encoded in a worker thread
    (``0``: every request; ``None``: none, all on the event loop).
    """
    from .. import __version__

    sidecar = Sidecar(store, token_file=token_file, export_log=export_log, max_body=max_body,
                      offload_bytes=offload_bytes, public_url=public_url)
    app = FastAPI(title=title, version=__version__, docs_url=None, redoc_url=None,
                  description=openapi.DESCRIPTION)
    app.state.sidecar = sidecar

    async def read_body(request: Request) -> bytes:
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > sidecar.max_body:
                raise Problem(413, f"the body is larger than this sidecar accepts ({sidecar.max_body} bytes)",
                              kind="too-large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def run(request: Request, work: Callable[[Sidecar, Any], dict[str, Any]]) -> Response:
        body = await read_body(request)
        content_type = request.headers.get("content-type")

        def job() -> bytes:
            return encode(work(sidecar, parse_json(body, content_type)))

        threshold = sidecar.offload_bytes
        if threshold is not None and len(body) > threshold:
            data = await anyio.to_thread.run_sync(job)
        else:
            data = job()
        return Response(data, media_type="application/json")

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        sidecar.metrics.problem(exc.kind)
        return Response(exc.encode(request.url.path), status_code=exc.status, media_type=PROBLEM_JSON,
                        headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        kind = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http")
        detail = {404: f"no endpoint {request.url.path}; see /openapi.json",
                  405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
        return await _problem(request, Problem(exc.status_code, detail, kind=kind,
                                               headers=dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return await _problem(request, bad(f"the request is not valid: {exc.errors()}"))

    docs = openapi.route_docs

    @app.post("/access/v1/evaluation", tags=["AuthZEN"], **docs("Evaluation", "Decision"))
    async def access_evaluation(request: Request) -> Response:
        """AuthZEN Access Evaluation: may this partner receive these fields of this student for this purpose?"""
        return await run(request, evaluate_one)

    @app.post("/access/v1/evaluations", tags=["AuthZEN"], **docs("Evaluations", "EvaluationsResponse"))
    async def access_evaluations(request: Request) -> Response:
        """AuthZEN Access Evaluations: many evaluations in one call, answered in request order."""
        return await run(request, evaluate_many)

    @app.get("/.well-known/authzen-configuration", tags=["AuthZEN"], **docs(None, "Configuration"))
    async def configuration(request: Request) -> Response:
        """AuthZEN Policy Decision Point metadata (discovery)."""
        base = sidecar.public_url or str(request.base_url).rstrip("/")
        return json_response({"policy_decision_point": base,
                              "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
                              "access_evaluations_endpoint": f"{base}/access/v1/evaluations"})

    @app.post("/avgpolicy/v1/decide", tags=["avgpolicy"], **docs("DecideRequest", "Decision"))
    async def decide_route(request: Request) -> Response:
        """One decision, in full: every field's outcome with rule, basis, transform, retention and reasons."""
        return await run(request, decide)

    @app.post("/avgpolicy/v1/filter", tags=["avgpolicy"], **docs("FilterRequest", "FilterResponse"))
    async def filter_route(request: Request) -> Response:
        """Records in, permitted rows out (transforms applied); recorded first when an export log is set."""
        return await run(request, filter_rows)

    @app.post("/avgpolicy/v1/plan", tags=["avgpolicy"], **docs("PlanRequest", "PlanResponse"))
    async def plan_route(request: Request) -> Response:
        """The SQL a database runs to select what filter would release (bound parameters, one dialect)."""
        return await run(request, plan)

    @app.get("/avgpolicy/v1/register", tags=["avgpolicy"], **docs(None, None))
    async def register_route(request: Request) -> Response:
        """The sharing overview / processing register: `?format=json` (default) or `html`, `md`, `csv`;
        `?today=YYYY-MM-DD` for the date it describes."""
        from ..register import render

        fmt = request.query_params.get("format", "json")
        if fmt not in REGISTER_TYPES:
            raise bad(f"format must be one of {', '.join(REGISTER_TYPES)}, not {fmt!r}", "format")
        today = parse_moment(request.query_params.get("today"), "today")
        if today is not None and hasattr(today, "date"):
            today = today.date()
        text = await anyio.to_thread.run_sync(lambda: render(sidecar.store.policy, fmt, today=today))
        return Response(text.encode("utf-8"), media_type=REGISTER_TYPES[fmt])

    @app.get("/healthz", tags=["operations"], **docs(None, None))
    async def healthz() -> Response:
        """Liveness: the process answers."""
        return json_response({"status": "ok"})

    @app.get("/readyz", tags=["operations"], **docs(None, None))
    async def readyz(request: Request) -> Response:
        """Readiness: a complete policy version is served. When the last reload failed the answer says why
        (status `stale`); it stays 200 (the last good version is served) unless `?strict=true`."""
        store = sidecar.store
        policy = store.policy
        error = store.last_error
        body: dict[str, Any] = {"ready": True, "status": "ok" if error is None else "stale",
                                "policy_version": policy.version, "reloads": store.reloads,
                                "rules": len(policy.model.rules), "last_reload_error": None}
        if error is not None:
            body["last_reload_error"] = _error_summary(error)
        strict = request.query_params.get("strict", "false").lower() in ("1", "true", "yes")
        return json_response(body, 503 if strict and error is not None else 200)

    @app.get("/metrics", tags=["operations"], **docs(None, None))
    async def metrics() -> Response:
        """Prometheus text exposition format."""
        store = sidecar.store

        def gauges() -> list[tuple[str, str, str, list[tuple[dict[str, str], float]]]]:
            policy = store.policy
            info = policy.cache_info()
            return [
                ("avgpolicy_policy_info", "gauge", "The policy version served (value 1).",
                 [({"version": policy.version}, 1)]),
                ("avgpolicy_policy_reloads_total", "counter", "New policy versions swapped in since the start.",
                 [({}, store.reloads)]),
                ("avgpolicy_policy_reload_failing", "gauge",
                 "1 while the newest files do not load (the last good version is served), else 0.",
                 [({}, 1 if store.last_error is not None else 0)]),
                ("avgpolicy_compile_cache_hits_total", "counter", "Compiled-request cache hits of this version.",
                 [({}, info.hits)]),
                ("avgpolicy_compile_cache_misses_total", "counter", "Compiled-request cache misses of this version.",
                 [({}, info.misses)]),
                ("avgpolicy_process_start_time_seconds", "gauge", "Start of the sidecar, seconds since the epoch.",
                 [({}, sidecar.metrics.started)]),
            ]

        return Response(sidecar.metrics.render(gauges).encode("utf-8"), media_type=METRICS_CONTENT_TYPE)

    openapi.install(app)
    app.add_middleware(Middleware, sidecar=sidecar)
    return app
