"""The OpenAPI document's schemas, written as JSON Schema by hand.

The routes read their bodies themselves (so that every mistake is a problem+json 400 naming the
member, and a batch of a thousand evaluations is not validated twice); these schemas describe the same
shapes for client generators (openapi-generator for Java or C#, NSwag, ...). AuthZEN shapes follow the
OpenID Authorization API 1.0; ``additionalProperties`` is left open because receivers must ignore
unknown members.
"""

from __future__ import annotations

from typing import Any

DESCRIPTION = """\
avgpolicy as an HTTP service next to a student information system: GDPR (AVG) decisions per field,
with reasons, for any language.

* AuthZEN Authorization API 1.0: `POST /access/v1/evaluation`, `POST /access/v1/evaluations`,
  `GET /.well-known/authzen-configuration`. Subject `{type: "partner", id}`, action `{name: PURPOSE}`,
  resource `{type: "student", id: KEY, properties: RECORD}`, context `{fields: [...], at}`.
* avgpolicy: decide, filter, plan, register.
* Errors are RFC 9457 `application/problem+json`; a denial is a 200 with `"decision": false`.
* With `--token-file`, every request needs `Authorization: Bearer <token>`.
"""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STR = {"type": "string"}
_MOMENT = {"type": "string", "description": "YYYY-MM-DD (start of that day in the policy's time zone) or an "
                                            "ISO 8601 date and time; default: now",
           "examples": ["2026-03-02", "2026-03-02T10:00:00+01:00"]}
_FIELDS = {"type": "array", "minItems": 1, "items": _STR, "description": "dataset.field references",
           "examples": [["leerling.roepnaam", "leerling.eckid"]]}
_RECORD = {"type": "object", "additionalProperties": True,
           "description": "A student record: subject fields by bare name (`roepnaam`), other datasets' fields by "
                          "reference (`absentie.reden`); dates as YYYY-MM-DD, sets as arrays; optional `consents`: "
                          "topic -> {by: parent|student, given: date, withdrawn: date|null}.",
           "examples": [{"id": "s1", "roepnaam": "Daan", "leerjaar": 5, "geboortedatum": "2016-03-01",
                         "actief": True}]}

SCHEMAS: dict[str, Any] = {
    "Subject": {"type": "object", "required": ["type", "id"], "properties": {
        "type": {"type": "string", "const": "partner"}, "id": {"type": "string", "description": "partner name"},
        "properties": {"type": "object"}}},
    "Action": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "description": "purpose name"}, "properties": {"type": "object"}}},
    "Resource": {"type": "object", "required": ["type", "id"], "properties": {
        "type": {"type": "string", "const": "student"}, "id": {"type": "string", "description": "the student's key"},
        "properties": _RECORD}},
    "Context": {"type": "object", "required": ["fields"], "properties": {
        "fields": _FIELDS, "at": _MOMENT, "time": {"type": "string", "description": "read when `at` is absent"}}},
    "Evaluation": {"type": "object", "required": ["subject", "action", "resource", "context"], "properties": {
        "subject": _ref("Subject"), "action": _ref("Action"), "resource": _ref("Resource"),
        "context": _ref("Context")}},
    "EvaluationItem": {"type": "object", "description": "members missing here come from the request's top level",
                       "properties": {"subject": _ref("Subject"), "action": _ref("Action"),
                                      "resource": _ref("Resource"), "context": _ref("Context")}},
    "Evaluations": {"type": "object", "properties": {
        "subject": _ref("Subject"), "action": _ref("Action"), "resource": _ref("Resource"),
        "context": _ref("Context"), "evaluations": {"type": "array", "items": _ref("EvaluationItem")},
        "options": {"type": "object", "properties": {"evaluations_semantic": {
            "type": "string", "enum": ["execute_all", "deny_on_first_deny", "permit_on_first_permit"],
            "default": "execute_all"}}}}},
    "Reason": {"type": "object", "properties": {
        "code": _STR, "message": _STR, "field": {"type": ["string", "null"]}, "rule": {"type": ["string", "null"]},
        "location": {"type": ["object", "null"], "properties": {"file": _STR, "line": {"type": "integer"}}}}},
    "FieldDecision": {"type": "object", "properties": {
        "field": _STR, "allowed": {"type": "boolean"}, "rule": {"type": ["string", "null"]},
        "basis": {"type": ["string", "null"]}, "transform": {"type": ["string", "null"]},
        "retain": {"type": ["string", "null"]}, "reasons": {"type": "array", "items": _ref("Reason")}},
        "additionalProperties": True},
    "DecisionContext": {"type": "object", "properties": {
        "decision_id": _STR, "policy_version": _STR,
        "fields": {"type": "object", "additionalProperties": _ref("FieldDecision")},
        "error": {"type": "object", "description": "set when this evaluation could not be read (it is denied)",
                  "properties": {"status": {"type": "integer"}, "message": _STR, "pointer": _STR}}}},
    "Decision": {"type": "object", "required": ["decision"], "properties": {
        "decision": {"type": "boolean"}, "context": _ref("DecisionContext")}},
    "EvaluationsResponse": {"type": "object", "properties": {
        "evaluations": {"type": "array", "items": _ref("Decision")},
        "decision": {"type": "boolean", "description": "only when the request had no evaluations array"},
        "context": _ref("DecisionContext")}},
    "Configuration": {"type": "object", "required": ["policy_decision_point", "access_evaluation_endpoint"],
                      "properties": {"policy_decision_point": _STR, "access_evaluation_endpoint": _STR,
                                     "access_evaluations_endpoint": _STR}},
    "DecideRequest": {"type": "object", "required": ["partner", "purpose", "fields", "student"], "properties": {
        "partner": _STR, "purpose": _STR, "fields": _FIELDS, "student": _RECORD, "at": _MOMENT}},
    "FullDecision": {"type": "object", "description": "Decision.to_dict() and its decision id", "properties": {
        "allowed": {"type": "boolean"}, "policy_version": _STR, "partner": _STR, "purpose": _STR,
        "decision_id": _STR, "fields": {"type": "object", "additionalProperties": _ref("FieldDecision")},
        "reasons": {"type": "array", "items": _ref("Reason")}}},
    "FilterRequest": {"type": "object", "required": ["partner", "purpose", "fields", "records"], "properties": {
        "partner": _STR, "purpose": _STR, "fields": _FIELDS, "records": {"type": "array", "items": _RECORD},
        "at": _MOMENT, "actor": {"type": "string", "description": "who exports; required with an export log"},
        "channel": {"type": "string", "description": "how the data leaves (default `sidecar`)"}}},
    "FilterResponse": {"type": "object", "properties": {
        "policy_version": _STR, "rows": {"type": "array", "items": {"type": "object"}},
        "sent": {"type": "integer"}, "left_out": {"type": "integer"},
        "export_id": {"type": "string", "description": "the export record written (with an export log)"}}},
    "PlanRequest": {"type": "object", "required": ["partner", "purpose", "fields", "dialect", "table"],
                    "properties": {"partner": _STR, "purpose": _STR, "fields": _FIELDS, "at": _MOMENT,
                                   "dialect": {"type": "string", "enum": ["duckdb", "sqlite", "postgres", "spark"]},
                                   "table": _STR, "columns": {"type": "object", "additionalProperties": _STR},
                                   "consents": {"type": ["string", "object"]}}},
    "PlanResponse": {"type": "object", "properties": {
        "policy_version": _STR, "kind": {"type": "string", "enum": ["all", "none", "conditional"]},
        "dialect": _STR, "sql": _STR, "params": {}}},
    "Problem": {"type": "object", "description": "RFC 9457 problem details", "properties": {
        "type": _STR, "title": _STR, "status": {"type": "integer"}, "detail": _STR, "instance": _STR,
        "pointer": {"type": "string", "description": "JSON Pointer to the member that is wrong"}}},
}

_PROBLEM = {"description": "problem details (RFC 9457)",
            "content": {"application/problem+json": {"schema": _ref("Problem")}}}
_RESPONSE_NAMES = {"Decision": "Decision", "EvaluationsResponse": "EvaluationsResponse",
                   "Configuration": "Configuration", "FilterResponse": "FilterResponse", "PlanResponse": "PlanResponse"}


def route_docs(request: str | None, response: str | None) -> dict[str, Any]:
    """``openapi_extra`` and ``responses`` for a route whose body is read by hand."""
    out: dict[str, Any] = {"responses": {"400": _PROBLEM, "401": _PROBLEM, "413": _PROBLEM}}
    if response is not None:
        name = "FullDecision" if request == "DecideRequest" else response
        out["responses"]["200"] = {"description": "OK",
                                   "content": {"application/json": {"schema": _ref(name)}}}
    if request is not None:
        out["openapi_extra"] = {"requestBody": {"required": True, "content": {
            "application/json": {"schema": _ref(request)}}}}
    return out


def install(app: Any) -> None:
    """Add the schemas to the app's OpenAPI document (built once, on first request)."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = original()
            document.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
            document["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
            document["security"] = [{"bearer": []}, {}]
            app.openapi_schema = document
        return app.openapi_schema  # type: ignore[no-any-return]

    app.openapi = openapi
