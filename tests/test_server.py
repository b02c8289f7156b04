"""The sidecar over real HTTP: `python -m avgpolicy serve` runs as a subprocess on a free loopback port.

Every endpoint, the AuthZEN shapes as the specification writes them, problem+json for every
malformed request (never a 500, never an allow), X-Request-ID, bearer tokens, request size, atomic
reload under 8 concurrent clients, and decisions over HTTP equal to ``decide`` in process.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import avgpolicy
from avgpolicy.cli import student_from_json
from avgpolicy.testing import strategies as avg_st

ROOT = Path(__file__).resolve().parent.parent
KEY = b"sidecar-test-pseudonym-key-0123456789"
AT = "2026-03-02"

CATALOGUE = """\
dataset leerling "Leerlinggegevens" subject {
    id            text  personal
    eckid         text  pseudonym
    roepnaam      text  personal
    geboortedatum date  personal
    school        text  personal
    leerjaar      int   personal
    lesgroepen    set   personal
    bsn           text  national_id
    zorgnotitie   text  special
}

partner snappet "Snappet B.V." {
    agreement "DPA-2025-031" valid from 2025-08-01 until 2030-07-31
}

purpose leermiddelen "Levering en gebruik van digitaal leermateriaal"
consent beeldmateriaal "Foto's en video's op de website"
"""
RULES = """\
permit snappet_lesmateriaal {
    partner  snappet
    purpose  leermiddelen
    basis    contract
    fields   leerling.{eckid, roepnaam, leerjaar, lesgroepen, geboortedatum}, leerling.id as pseudonym
    students where school == "12AB" and leerjaar in 3..8
    valid    from 2025-08-01 until 2030-07-31
    retain   1 year
}

forbid geen_zorgdata {
    partner  *
    fields   leerling.zorgnotitie, leerling.bsn
}
"""
RULES_B = RULES.replace("leerjaar in 3..8", "leerjaar in 5..8")  # the reloaded version: groups 3 and 4 lose access

FIELDS = ["leerling.roepnaam", "leerling.leerjaar"]
ENDPOINTS = ["/access/v1/evaluation", "/access/v1/evaluations", "/avgpolicy/v1/decide", "/avgpolicy/v1/filter",
             "/avgpolicy/v1/plan"]


def write_atomically(path: Path, text: str) -> None:
    """What docs/sidecar.md tells users: write a temporary file beside it, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp")  # not *.avg: the store never reads it
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def student(leerjaar: Any = 5, **extra: Any) -> dict[str, Any]:
    record = {"id": f"s{leerjaar}", "roepnaam": "Daan", "school": "12AB", "leerjaar": leerjaar,
              "geboortedatum": "2016-03-01", "lesgroepen": ["5B"], "eckid": "eck-1"}
    record.update(extra)
    return record


def evaluation(leerjaar: Any = 5, *, partner: str = "snappet", purpose: str = "leermiddelen",
               fields: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    record = student(leerjaar, **extra)
    return {"subject": {"type": "partner", "id": partner}, "action": {"name": purpose},
            "resource": {"type": "student", "id": record["id"], "properties": record},
            "context": {"fields": fields or FIELDS, "at": AT}}


class Server:
    """`python -m avgpolicy serve ...` on a free loopback port; stderr is collected in ``log``."""

    def __init__(self, *args: str | os.PathLike[str]) -> None:
        cmd = [sys.executable, "-m", "avgpolicy", "serve", "--port", "0", *map(str, args)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                                     cwd=ROOT)
        self.log: list[str] = []
        lines: queue.Queue[str | None] = queue.Queue()

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        self._drain = threading.Thread(target=drain, daemon=True)
        self._drain.start()
        deadline = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError("the sidecar did not start in 60 s:\n" + "".join(self.log)) from None
            if line is None:
                self.stop()
                raise AssertionError(f"the sidecar exited ({self.proc.returncode}):\n" + "".join(self.log))
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                self.url = found.group(1)
                break

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain.join(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sidecar")
    (root / "policies").mkdir()
    (root / "policies" / "catalogue.avg").write_text(CATALOGUE, encoding="utf-8")
    (root / "policies" / "rules.avg").write_text(RULES, encoding="utf-8")
    (root / "key").write_bytes(KEY)
    return root


@pytest.fixture(scope="module")
def policy(folder: Path) -> avgpolicy.Policy:
    return avgpolicy.load(folder / "policies", pseudonym_key=KEY)


@pytest.fixture(scope="module")
def server(folder: Path) -> Any:
    srv = Server(folder / "policies", "--pseudonym-key-file", folder / "key", "--max-body", "65536")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Any:
    with server.client() as client:
        yield client


def post(http: httpx.Client, path: str, body: Any, **headers: str) -> httpx.Response:
    return http.post(path, content=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def expected_fields(policy: avgpolicy.Policy, body: dict[str, Any]) -> dict[str, Any]:
    """What decide in process says about an evaluation body, as JSON."""
    record = student_from_json(body["resource"]["properties"], policy)
    at = datetime.date.fromisoformat(body["context"]["at"])
    decision = policy.decide(body["subject"]["id"], body["action"]["name"], body["context"]["fields"], record, at=at)
    return json.loads(json.dumps({k: fd.to_dict() for k, fd in decision.fields.items()}))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert status == response.status_code, response.text
    assert "application/problem+json" == response.headers["content-type"]
    body = response.json()
    assert status == body["status"]
    assert body["type"].startswith("urn:avgpolicy:problem:")
    assert body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------
# AuthZEN: evaluation


def test_evaluation_allows_with_fields_and_reasons(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    body = evaluation(5)
    response = post(http, "/access/v1/evaluation", body)
    assert 200 == response.status_code
    assert "application/json" == response.headers["content-type"]
    answer = response.json()
    assert answer["decision"] is True
    context = answer["context"]
    assert policy.version == context["policy_version"]
    assert context["decision_id"]
    assert expected_fields(policy, body) == context["fields"]
    assert "snappet_lesmateriaal" == context["fields"]["leerling.roepnaam"]["rule"]
    assert [{"code", "message", "field", "rule", "location"}] == [set(r) for r in
                                                                 context["fields"]["leerling.roepnaam"]["reasons"]]


def test_evaluation_denial_names_rule_and_location(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    body = evaluation(5, fields=["leerling.roepnaam", "leerling.bsn"])
    answer = post(http, "/access/v1/evaluation", body).json()
    assert answer["decision"] is False
    bsn = answer["context"]["fields"]["leerling.bsn"]
    assert bsn["allowed"] is False
    assert "forbidden" in [r["code"] for r in bsn["reasons"]]
    assert {"file", "line"} == set(next(r for r in bsn["reasons"] if r["code"] == "forbidden")["location"])
    assert expected_fields(policy, body) == answer["context"]["fields"]


def test_decision_ids_are_unique(http: httpx.Client) -> None:
    ids = {post(http, "/access/v1/evaluation", evaluation(5)).json()["context"]["decision_id"] for _ in range(20)}
    assert 20 == len(ids)


def test_evaluation_with_only_the_required_members_is_denied_with_a_reason(http: httpx.Client) -> None:
    """AuthZEN requires subject, action and resource (type and id); context is optional. Without
    fields nothing may be sent: a 200 denial saying what to add, never an allow."""
    body = {"subject": {"type": "partner", "id": "snappet"}, "action": {"name": "leermiddelen"},
            "resource": {"type": "student", "id": "s1"}}
    response = post(http, "/access/v1/evaluation", body)
    assert 200 == response.status_code
    answer = response.json()
    assert answer["decision"] is False
    assert ["no_fields"] == [r["code"] for r in answer["context"]["reasons"]]
    with_fields = {**body, "context": {"fields": ["leerling.roepnaam"], "at": AT}}
    answer = post(http, "/access/v1/evaluation", with_fields).json()
    assert answer["decision"] is False  # the record is empty: the permit's condition cannot hold
    assert answer["context"]["fields"]["leerling.roepnaam"]["reasons"]


def test_unknown_members_are_ignored(http: httpx.Client) -> None:
    plain = evaluation(5)
    extended = copy.deepcopy(plain)
    extended["extra"] = {"x": 1}
    extended["subject"]["properties"] = {"department": "ict", "ip_address": "172.217.22.14"}
    extended["subject"]["unknown"] = True
    extended["action"]["properties"] = {"method": "GET"}
    extended["resource"]["unknown"] = [1, 2]
    extended["context"]["time"] = "1985-10-26T01:22-07:00"  # `at` wins over AuthZEN's `time`
    extended["context"]["schema"] = "https://schema.example.com/access-request.schema.json"
    a, b = post(http, "/access/v1/evaluation", plain).json(), post(http, "/access/v1/evaluation", extended).json()
    assert a["decision"] is True
    assert a["decision"] == b["decision"]
    assert a["context"]["fields"] == b["context"]["fields"]


def test_context_time_is_read_when_at_is_absent(http: httpx.Client) -> None:
    body = evaluation(5)
    del body["context"]["at"]
    body["context"]["time"] = "2031-01-01T10:00:00+01:00"  # after the agreement and window ended
    answer = post(http, "/access/v1/evaluation", body).json()
    assert answer["decision"] is False


def test_unknown_partner_is_a_denial_with_reasons(http: httpx.Client) -> None:
    answer = post(http, "/access/v1/evaluation", evaluation(5, partner="nobody")).json()
    assert answer["decision"] is False
    codes = {r["code"] for fd in answer["context"]["fields"].values() for r in fd["reasons"]}
    assert "unknown_partner" in codes


def test_unknown_purpose_and_field_are_denials(http: httpx.Client) -> None:
    answer = post(http, "/access/v1/evaluation", evaluation(5, purpose="nothing")).json()
    assert answer["decision"] is False
    answer = post(http, "/access/v1/evaluation", evaluation(5, fields=["leerling.nope"])).json()
    assert answer["decision"] is False
    assert ["unknown_field"] == [r["code"] for r in answer["context"]["fields"]["leerling.nope"]["reasons"]]


@pytest.mark.parametrize("bad", [{"leerjaar": "vijf"}, {"leerjaar": None}, {"school": 12}, {"leerjaar": [5]},
                                 {"leerjaar": 5.0}, {"leerjaar": True}, {"school": {"brin": "12AB"}}])
def test_bad_student_data_is_a_denial_with_reasons(http: httpx.Client, policy: avgpolicy.Policy,
                                                    bad: dict[str, Any]) -> None:
    """An ill-typed attribute a condition reads: denied with a reason, exactly as decide denies it."""
    body = evaluation(5, fields=["leerling.roepnaam", "leerling.geboortedatum"])
    body["resource"]["properties"].update(bad)
    response = post(http, "/access/v1/evaluation", body)
    assert 200 == response.status_code
    answer = response.json()
    assert answer["decision"] is False
    assert expected_fields(policy, body) == answer["context"]["fields"]
    assert all(fd["reasons"] and not fd["allowed"] for fd in answer["context"]["fields"].values())


@pytest.mark.parametrize("bad", [{"geboortedatum": "1 maart"}, {"lesgroepen": "5B"}, {"roepnaam": None}])
def test_an_ill_typed_value_no_condition_reads_is_decided_as_decide_does(
        http: httpx.Client, policy: avgpolicy.Policy, bad: dict[str, Any]) -> None:
    """decide permits the field (the permission does not depend on it); filter leaves the value out."""
    body = evaluation(5, fields=["leerling.roepnaam", "leerling.geboortedatum", "leerling.lesgroepen"])
    body["resource"]["properties"].update(bad)
    answer = post(http, "/access/v1/evaluation", body).json()
    assert expected_fields(policy, body) == answer["context"]["fields"]
    rows = post(http, "/avgpolicy/v1/filter", {"partner": "snappet", "purpose": "leermiddelen", "at": AT,
                                                "fields": body["context"]["fields"],
                                                "records": [body["resource"]["properties"]]}).json()["rows"]
    assert [next(iter(bad))] == [f.split(".")[1] for f in body["context"]["fields"] if f not in rows[0]]


# ---------------------------------------------------------------------------
# malformed requests: problem+json, never a 500, never an allow


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("raw", [b"{", b"[]", b"null", b'"text"', b"42", b"", b'{"a": NaN}', b"\xff\xfe",
                                 b"[" * 30_000 + b"]" * 30_000, b'{"n": ' + b"9" * 5000 + b"}"],
                         ids=["truncated", "array", "null", "string", "number", "empty", "nan", "not-utf8",
                              "deep", "huge-int"])
def test_malformed_json_is_a_400_problem(http: httpx.Client, path: str, raw: bytes) -> None:
    response = http.post(path, content=raw, headers={"Content-Type": "application/json"})
    body = assert_problem(response, 413 if len(raw) > 65536 else 400)
    assert "/" in body["instance"]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_a_body_that_is_not_json_is_refused(http: httpx.Client, path: str) -> None:
    response = http.post(path, content=b"subject=snappet",
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    body = assert_problem(response, 415)
    assert "application/json" in body["detail"]


def _set(body: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *path, last = pointer.strip("/").split("/")
    target: Any = body
    for part in path:
        target = target[int(part)] if isinstance(target, list) else target[part]
    index: Any = int(last) if isinstance(target, list) else last
    if value is ...:
        del target[index]
    else:
        target[index] = value
    return body


@pytest.mark.parametrize(("pointer", "value"), [
    ("/subject", "snappet"), ("/subject", ...), ("/subject/id", 5), ("/subject/id", ""), ("/subject/id", ...),
    ("/subject/type", "user"), ("/subject/type", ...), ("/action", ...), ("/action", ["leermiddelen"]),
    ("/action/name", None), ("/resource", ...), ("/resource/type", "teacher"), ("/resource/id", 7),
    ("/resource/properties", [1]), ("/resource/properties/id", "someone-else"), ("/context", "now"),
    ("/context/fields", "leerling.roepnaam"), ("/context/fields", []), ("/context/fields/0", 5),
    ("/context/at", "yesterday"), ("/context/at", 20260302), ("/context/at", "2026-02-30"),
])
def test_wrong_types_and_missing_members_are_400_problems_naming_the_member(
        http: httpx.Client, pointer: str, value: Any) -> None:
    body = _set(evaluation(5), pointer, value)
    problem = assert_problem(post(http, "/access/v1/evaluation", body), 400)
    assert problem["pointer"].startswith(pointer.rsplit("/", 1)[0] if value is ... else pointer)


@pytest.mark.parametrize("path", ["/avgpolicy/v1/decide", "/avgpolicy/v1/filter"])
@pytest.mark.parametrize(("member", "value"), [("partner", 5), ("purpose", ...), ("fields", ["a", 5]),
                                               ("fields", []), ("at", "soon")])
def test_avgpolicy_endpoints_check_their_members(http: httpx.Client, path: str, member: str, value: Any) -> None:
    body: dict[str, Any] = {"partner": "snappet", "purpose": "leermiddelen", "fields": FIELDS, "at": AT,
                            "student": student(5), "records": [student(5)]}
    if value is ...:
        del body[member]
    else:
        body[member] = value
    problem = assert_problem(post(http, path, body), 400)
    assert member in problem["detail"]


def test_an_oversized_body_is_refused_with_413(http: httpx.Client) -> None:
    body = {"evaluations": [evaluation(5)] * 400}
    assert len(json.dumps(body)) > 65536
    problem = assert_problem(post(http, "/access/v1/evaluations", body), 413)
    assert "65536" in problem["detail"]


def test_an_oversized_chunked_body_is_refused_with_413(http: httpx.Client) -> None:
    """No Content-Length: the sidecar counts while it reads and stops at the limit."""
    def chunks() -> Any:
        for _ in range(100):
            yield b" " * 1024
    response = http.post("/access/v1/evaluations", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)


def test_unknown_paths_and_methods_are_problems(http: httpx.Client) -> None:
    assert_problem(http.get("/access/v1/nothing"), 404)
    assert_problem(http.get("/access/v1/evaluation"), 405)


@given(body=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8)
    | st.sampled_from(["snappet", "leermiddelen", "partner", "student", "leerling.roepnaam", AT]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["subject", "action", "resource", "context", "type", "id", "name", "properties",
                         "fields", "at", "evaluations", "options", "evaluations_semantic", "partner", "purpose",
                         "student", "records", "leerjaar", "school"]) | st.text(max_size=4), inner, max_size=5),
    max_leaves=25), path=st.sampled_from(ENDPOINTS))
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
def test_generated_bodies_never_give_a_500(http: httpx.Client, body: Any, path: str) -> None:
    response = post(http, path, body)
    assert response.status_code in (200, 400, 422, 501), response.text
    if response.status_code != 200:
        assert "application/problem+json" == response.headers["content-type"]
        return
    answer = response.json()
    for item in answer.get("evaluations", [answer] if "decision" in answer else []):
        assert isinstance(item["decision"], bool)
        if item["decision"]:  # an allow only where every field named was allowed by a rule
            assert item["context"]["fields"] and all(fd["allowed"] and fd["rule"]
                                                     for fd in item["context"]["fields"].values())


# ---------------------------------------------------------------------------
# AuthZEN: evaluations


def _batch(leerjaren: list[Any], semantic: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"evaluations": [evaluation(j) for j in leerjaren]}
    if semantic is not None:
        body["options"] = {"evaluations_semantic": semantic}
    return body


def test_evaluations_execute_all_in_request_order(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    leerjaren = [5, 1, 6, 2, 7, 9, 3]
    body = _batch(leerjaren, "execute_all")
    answer = post(http, "/access/v1/evaluations", body).json()
    assert [True, False, True, False, True, False, True] == [e["decision"] for e in answer["evaluations"]]
    assert [expected_fields(policy, b) for b in body["evaluations"]] == [e["context"]["fields"]
                                                                        for e in answer["evaluations"]]
    assert "decision" not in answer  # AuthZEN 7.2: RECOMMENDED to omit it
    default = post(http, "/access/v1/evaluations", _batch(leerjaren)).json()
    assert [e["decision"] for e in answer["evaluations"]] == [e["decision"] for e in default["evaluations"]]


def test_evaluations_deny_on_first_deny_stops_after_the_first_denial(http: httpx.Client) -> None:
    answer = post(http, "/access/v1/evaluations", _batch([5, 6, 1, 7, 2], "deny_on_first_deny")).json()
    assert [True, True, False] == [e["decision"] for e in answer["evaluations"]]
    answer = post(http, "/access/v1/evaluations", _batch([5, 6], "deny_on_first_deny")).json()
    assert [True, True] == [e["decision"] for e in answer["evaluations"]]


def test_evaluations_permit_on_first_permit_stops_after_the_first_permit(http: httpx.Client) -> None:
    answer = post(http, "/access/v1/evaluations", _batch([1, 2, 5, 1, 6], "permit_on_first_permit")).json()
    assert [False, False, True] == [e["decision"] for e in answer["evaluations"]]
    answer = post(http, "/access/v1/evaluations", _batch([1, 2], "permit_on_first_permit")).json()
    assert [False, False] == [e["decision"] for e in answer["evaluations"]]


def test_evaluations_deny_on_first_deny_counts_an_unreadable_item_as_a_denial(http: httpx.Client) -> None:
    body = _batch([5, 6, 7], "deny_on_first_deny")
    body["evaluations"][1]["subject"] = 5
    answer = post(http, "/access/v1/evaluations", body).json()
    assert [True, False] == [e["decision"] for e in answer["evaluations"]]


def test_evaluations_take_defaults_from_the_top_level(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    records = [student(5), student(1), student(6)]
    body = {"subject": {"type": "partner", "id": "snappet"}, "action": {"name": "leermiddelen"},
            "context": {"fields": FIELDS, "at": AT},
            "evaluations": [{"resource": {"type": "student", "id": r["id"], "properties": r}} for r in records]}
    body["evaluations"][2]["action"] = {"name": "nothing"}  # an item's own member overrides the default
    answer = post(http, "/access/v1/evaluations", body).json()
    assert [True, False, False] == [e["decision"] for e in answer["evaluations"]]
    codes = {r["code"] for fd in answer["evaluations"][2]["context"]["fields"].values() for r in fd["reasons"]}
    assert "unknown_purpose" in codes


def test_each_evaluation_item_fails_closed_on_its_own(http: httpx.Client) -> None:
    body = _batch([5, 5, 5, 5, 6])
    body["evaluations"][1] = "not an object"
    body["evaluations"][2]["resource"]["type"] = "teacher"
    del body["evaluations"][3]["action"]  # no default either
    answer = post(http, "/access/v1/evaluations", body)
    assert 200 == answer.status_code
    results = answer.json()["evaluations"]
    assert [True, False, False, False, True] == [e["decision"] for e in results]
    for bad, pointer in ((results[1], "/evaluations/1"), (results[2], "/evaluations/2/resource/type"),
                         (results[3], "/evaluations/3/action")):
        assert 400 == bad["context"]["error"]["status"]
        assert bad["context"]["error"]["pointer"] == pointer
        assert bad["context"]["error"]["message"]
        assert "fields" not in bad["context"]


def test_evaluations_without_an_array_behave_as_one_evaluation(http: httpx.Client) -> None:
    for body in (evaluation(5), {**evaluation(5), "evaluations": []}):
        answer = post(http, "/access/v1/evaluations", body).json()
        assert answer["decision"] is True
        assert "evaluations" not in answer
    assert_problem(post(http, "/access/v1/evaluations", {"evaluations": []}), 400)


@pytest.mark.parametrize(("member", "value"), [("evaluations", {"a": 1}), ("options", "all"),
                                               ("options", {"evaluations_semantic": "first"})])
def test_evaluations_with_a_malformed_envelope_are_400(http: httpx.Client, member: str, value: Any) -> None:
    body = _batch([5])
    body[member] = value
    problem = assert_problem(post(http, "/access/v1/evaluations", body), 400)
    assert problem["pointer"].startswith(f"/{member}")


def test_a_batch_larger_than_the_offload_threshold_is_decided_the_same(http: httpx.Client,
                                                                       policy: avgpolicy.Policy) -> None:
    """Bodies over 16 KiB are decided in a worker thread: the same answers, in the same order."""
    body = _batch([1, 2, 3, 4, 5, 6, 7, 8, 9] * 11)
    assert 16 * 1024 < len(json.dumps(body)) < 65536
    answer = post(http, "/access/v1/evaluations", body).json()
    assert [expected_fields(policy, b) for b in body["evaluations"]] == [e["context"]["fields"]
                                                                        for e in answer["evaluations"]]


def test_discovery_document(http: httpx.Client, server: Server) -> None:
    response = http.get("/.well-known/authzen-configuration")
    assert 200 == response.status_code
    assert "application/json" == response.headers["content-type"]
    assert {"policy_decision_point": server.url, "access_evaluation_endpoint": f"{server.url}/access/v1/evaluation",
            "access_evaluations_endpoint": f"{server.url}/access/v1/evaluations"} == response.json()


# ---------------------------------------------------------------------------
# avgpolicy endpoints


def test_decide_returns_decision_to_dict(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    for leerjaar in (5, 1):
        record = student(leerjaar)
        body = {"partner": "snappet", "purpose": "leermiddelen", "fields": [*FIELDS, "leerling.bsn"],
                "student": record, "at": AT}
        answer = post(http, "/avgpolicy/v1/decide", body).json()
        decision = policy.decide("snappet", "leermiddelen", body["fields"], student_from_json(record, policy),
                                 at=datetime.date(2026, 3, 2))
        assert answer.pop("decision_id")
        assert json.loads(json.dumps(decision.to_dict())) == answer


def test_filter_returns_the_rows_filter_gives(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    records = [student(5, id="a"), student(1, id="b"), student("x", id="c"), student(8, id="d")]
    fields = ["leerling.id", "leerling.roepnaam", "leerling.geboortedatum", "leerling.lesgroepen"]
    answer = post(http, "/avgpolicy/v1/filter", {"partner": "snappet", "purpose": "leermiddelen", "fields": fields,
                                                  "records": records, "at": AT}).json()
    rows = list(policy.filter("snappet", "leermiddelen", fields, [student_from_json(r, policy) for r in records],
                              at=datetime.date(2026, 3, 2)))
    assert 2 == len(rows)
    assert [{**r, "leerling.geboortedatum": r["leerling.geboortedatum"].isoformat(),
             "leerling.lesgroepen": sorted(r["leerling.lesgroepen"])} for r in rows] == answer["rows"]
    assert answer["rows"][0]["leerling.id"] != "a"  # sent as a pseudonym
    assert {"policy_version": policy.version, "sent": 2, "left_out": 2} == {
        k: answer[k] for k in ("policy_version", "sent", "left_out")}


def test_filter_with_an_export_log_records_the_batch_as_policy_export_does(folder: Path, tmp_path: Path,
                                                                           policy: avgpolicy.Policy) -> None:
    records = [student(5, id="a"), student(1, id="b"), student(8, id="c"), student(6, id=None)]
    fields = ["leerling.id", "leerling.roepnaam", "leerling.leerjaar"]
    srv = Server(folder / "policies", "--pseudonym-key-file", folder / "key", "--export-log",
                 tmp_path / "exports.sqlite")
    try:
        with srv.client() as client:
            body = {"partner": "snappet", "purpose": "leermiddelen", "fields": fields, "records": records, "at": AT,
                    "actor": "j.devries", "channel": "nightly-feed"}
            problem = assert_problem(post(client, "/avgpolicy/v1/filter", {**body, "actor": None}), 400)
            assert "actor" in problem["detail"]
            answer = post(client, "/avgpolicy/v1/filter", body).json()
    finally:
        srv.stop()
    with avgpolicy.ExportLog(tmp_path / "mine.sqlite") as mine:
        with policy.export("snappet", "leermiddelen", fields, at=datetime.date(2026, 3, 2), actor="j.devries",
                           channel="nightly-feed", log=mine) as export:
            rows = list(export.rows([student_from_json(r, policy) for r in records]))
        expected = mine.exports()
    with avgpolicy.ExportLog(tmp_path / "exports.sqlite") as log:
        recorded = log.exports()
        assert log.verify().ok
    assert json.loads(json.dumps(rows)) == answer["rows"]
    assert 2 == answer["sent"]
    assert [answer["export_id"]] == [r.id for r in recorded]
    same = ("status", "actor", "channel", "partner", "purpose", "fields", "policy_version", "at", "key_field",
            "students", "keys", "left_out", "left_out_reasons", "not_released", "grants", "error")
    assert [{k: getattr(r, k) for k in same} for r in expected] == [{k: getattr(r, k) for k in same} for r in recorded]
    assert ("completed", ("a", "c")) == (recorded[0].status, tuple(recorded[0].keys))


def test_filter_without_the_key_for_a_pseudonym_is_a_400(token_server: Server) -> None:
    with token_server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        problem = assert_problem(post(client, "/avgpolicy/v1/filter", {
            "partner": "snappet", "purpose": "leermiddelen", "fields": ["leerling.id"], "records": [student(5)],
            "at": AT}), 400)
    assert "pseudonym" in problem["detail"]


def test_filter_with_records_that_are_not_objects_is_a_400(http: httpx.Client) -> None:
    problem = assert_problem(post(http, "/avgpolicy/v1/filter", {
        "partner": "snappet", "purpose": "leermiddelen", "fields": FIELDS, "records": [student(5), 7]}), 400)
    assert "/records/1" == problem["pointer"]


def test_plan_returns_the_sql_of_policy_plan(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    body = {"partner": "snappet", "purpose": "leermiddelen", "fields": FIELDS, "at": AT, "dialect": "postgres",
            "table": "leerling", "columns": {"leerling.roepnaam": "naam"}}
    answer = post(http, "/avgpolicy/v1/plan", body).json()
    plan = policy.plan("snappet", "leermiddelen", FIELDS, at=datetime.date(2026, 3, 2))
    sql, params = plan.to_sql("postgres", table="leerling", columns={"leerling.roepnaam": "naam"})
    assert {"policy_version": policy.version, "kind": "conditional", "dialect": "postgres", "fields": FIELDS,
            "sql": sql, "params": json.loads(json.dumps(params))} == answer
    assert '"naam"' in answer["sql"]


def test_plan_runs_in_duckdb_and_selects_what_filter_releases(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    duckdb = pytest.importorskip("duckdb")
    answer = post(http, "/avgpolicy/v1/plan", {"partner": "snappet", "purpose": "leermiddelen", "fields": FIELDS,
                                                "at": AT, "dialect": "duckdb", "table": "leerling"}).json()
    con = duckdb.connect()
    con.execute("create table leerling (id text, roepnaam text, school text, leerjaar integer)")
    con.execute("insert into leerling values ('a', 'Daan', '12AB', 5), ('b', 'Sem', '12AB', 1), "
                "('c', 'Noor', '34CD', 6), ('d', NULL, '12AB', 8)")
    rows = sorted(con.execute(answer["sql"], answer["params"]).fetchall(), key=str)
    records = [{"id": "a", "roepnaam": "Daan", "school": "12AB", "leerjaar": 5},
               {"id": "b", "roepnaam": "Sem", "school": "12AB", "leerjaar": 1},
               {"id": "c", "roepnaam": "Noor", "school": "34CD", "leerjaar": 6},
               {"id": "d", "roepnaam": None, "school": "12AB", "leerjaar": 8}]
    expected = policy.filter("snappet", "leermiddelen", FIELDS, records, at=datetime.date(2026, 3, 2))
    assert sorted(((r.get("leerling.roepnaam"), r.get("leerling.leerjaar")) for r in expected), key=str) == rows


def test_plan_for_an_unknown_partner_releases_nothing(http: httpx.Client) -> None:
    response = post(http, "/avgpolicy/v1/plan", {"partner": "nobody", "purpose": "leermiddelen", "fields": FIELDS,
                                                 "at": AT, "dialect": "duckdb", "table": "leerling"})
    if response.status_code == 200:
        assert "none" == response.json()["kind"]
    else:
        assert_problem(response, 400)


def test_plan_refuses_a_field_sent_as_pseudonym(http: httpx.Client) -> None:
    """SQL would select the raw value: the pseudonym is computed in Python, never in the database."""
    problem = assert_problem(post(http, "/avgpolicy/v1/plan", {
        "partner": "snappet", "purpose": "leermiddelen", "fields": ["leerling.roepnaam", "leerling.id"], "at": AT,
        "dialect": "duckdb", "table": "leerling"}), 422)
    assert "leerling.id" in problem["detail"] and "pseudonym" in problem["detail"]


@pytest.mark.parametrize(("member", "value", "status"), [("dialect", "oracle", 400), ("dialect", 5, 400),
                                                         ("table", ..., 400), ("columns", {"leerling.nope": "x"}, 400),
                                                         ("columns", ["x"], 400)])
def test_plan_with_a_bad_request_is_a_problem(http: httpx.Client, member: str, value: Any, status: int) -> None:
    body = {"partner": "snappet", "purpose": "leermiddelen", "fields": FIELDS, "at": AT, "dialect": "duckdb",
            "table": "leerling"}
    if value is ...:
        del body[member]
    else:
        body[member] = value
    assert_problem(post(http, "/avgpolicy/v1/plan", body), status)


def test_register_json_and_html(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    from avgpolicy.register import render

    response = http.get("/avgpolicy/v1/register", params={"today": AT})
    assert 200 == response.status_code
    assert "application/json" == response.headers["content-type"]
    assert json.loads(render(policy, "json", today=datetime.date(2026, 3, 2))) == response.json()
    response = http.get("/avgpolicy/v1/register", params={"format": "html", "today": AT})
    assert response.headers["content-type"].startswith("text/html")
    assert "snappet" in response.text.lower() and "<html" in response.text.lower()
    assert_problem(http.get("/avgpolicy/v1/register", params={"format": "pdf"}), 400)
    assert_problem(http.get("/avgpolicy/v1/register", params={"today": "morgen"}), 400)


# ---------------------------------------------------------------------------
# operations


def test_healthz_and_readyz(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    assert {"status": "ok"} == http.get("/healthz").json()
    ready = http.get("/readyz").json()
    assert {"ready": True, "status": "ok", "policy_version": policy.version, "last_reload_error": None} == {
        k: ready[k] for k in ("ready", "status", "policy_version", "last_reload_error")}


def test_metrics_in_prometheus_text_format(http: httpx.Client, policy: avgpolicy.Policy) -> None:
    post(http, "/access/v1/evaluation", evaluation(5))
    post(http, "/access/v1/evaluation", {"subject": 5})
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? -?[0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith(("# HELP ", "# TYPE ")) or sample.match(line), line
    assert f'avgpolicy_policy_info{{version="{policy.version}"}} 1' in text
    assert re.search(r'avgpolicy_http_requests_total\{route="/access/v1/evaluation",method="POST",status="200"\} '
                     r'[1-9]', text)
    assert re.search(r'avgpolicy_http_requests_total\{route="/access/v1/evaluation",method="POST",status="400"\} '
                     r'[1-9]', text)
    assert re.search(r'avgpolicy_decisions_total\{endpoint="evaluation",outcome="allow"\} [1-9]', text)
    assert re.search(r'avgpolicy_http_request_duration_seconds_count\{route="/access/v1/evaluation"\} [1-9]', text)
    assert "avgpolicy_policy_reload_failing 0" in text


def test_openapi_document_describes_every_endpoint(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path, method in [("/access/v1/evaluation", "post"), ("/access/v1/evaluations", "post"),
                         ("/.well-known/authzen-configuration", "get"), ("/avgpolicy/v1/decide", "post"),
                         ("/avgpolicy/v1/filter", "post"), ("/avgpolicy/v1/plan", "post"),
                         ("/avgpolicy/v1/register", "get"), ("/healthz", "get"), ("/readyz", "get"),
                         ("/metrics", "get")]:
        assert method in paths[path], path
    refs = set(re.findall(r'"#/components/schemas/([A-Za-z]+)"', json.dumps(document)))
    assert refs and refs <= set(document["components"]["schemas"])
    body = paths["/access/v1/evaluation"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"$ref": "#/components/schemas/Evaluation"} == body


@pytest.mark.parametrize(("method", "path", "status"), [
    ("post", "/access/v1/evaluation", 200), ("post", "/access/v1/evaluation", 400), ("get", "/nowhere", 404),
    ("post", "/access/v1/evaluations", 413), ("get", "/healthz", 200)])
def test_x_request_id_is_echoed(http: httpx.Client, method: str, path: str, status: int) -> None:
    body = {200: evaluation(5), 400: {"subject": 1}, 404: None, 413: {"evaluations": [evaluation(5)] * 400}}[status]
    headers = {"X-Request-ID": "bfe9eb29-ab87-4ca3-be83-a1d5d8305716", "Content-Type": "application/json"}
    if method == "post":
        response = http.post(path, content=json.dumps(body), headers=headers)
    else:
        response = http.get(path, headers=headers)
    assert status == response.status_code
    assert "bfe9eb29-ab87-4ca3-be83-a1d5d8305716" == response.headers["x-request-id"]
    assert "x-request-id" not in http.get("/healthz").headers


# ---------------------------------------------------------------------------
# bearer token

TOKEN = "s3cret-token_value"


@pytest.fixture(scope="module")
def token_server(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    srv = Server(folder / "policies", "--token-file", token_file)
    srv.token_file = token_file  # type: ignore[attr-defined]
    yield srv
    srv.stop()


@pytest.mark.parametrize("path", ["/access/v1/evaluation", "/healthz", "/metrics", "/openapi.json",
                                  "/.well-known/authzen-configuration"])
def test_a_missing_or_wrong_token_is_rejected(token_server: Server, path: str) -> None:
    with token_server.client() as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": "Bearer"}):
            response = client.request("POST" if "access" in path else "GET", path, headers={
                **headers, "Content-Type": "application/json", "X-Request-ID": "r1"}, content=json.dumps(evaluation(5)))
            problem = assert_problem(response, 401)
            assert "Bearer" in response.headers["www-authenticate"]
            assert "r1" == response.headers["x-request-id"]
            assert "token" in problem["detail"]


def test_the_right_token_is_accepted_and_a_rotated_token_is_read(token_server: Server) -> None:
    with token_server.client() as client:
        ok = post(client, "/access/v1/evaluation", evaluation(5), Authorization=f"Bearer {TOKEN}")
        assert 200 == ok.status_code
        assert ok.json()["decision"] is True
        write_atomically(token_server.token_file, "rotated-token\n")  # type: ignore[attr-defined]
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if 200 == client.get("/healthz", headers={"Authorization": "Bearer rotated-token"}).status_code:
                    break
                time.sleep(0.2)
            assert 200 == client.get("/healthz", headers={"Authorization": "Bearer rotated-token"}).status_code
            assert 401 == client.get("/healthz", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        finally:
            write_atomically(token_server.token_file, TOKEN + "\n")  # type: ignore[attr-defined]
            time.sleep(1.2)


# ---------------------------------------------------------------------------
# reloading


def _wait_for(client: httpx.Client, predicate: Any, what: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        ready = client.get("/readyz").json()
        if predicate(ready):
            return ready  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: /readyz still says {ready}")
        time.sleep(0.05)


def test_a_broken_reload_keeps_the_last_good_version_and_readyz_says_why(tmp_path: Path) -> None:
    (tmp_path / "catalogue.avg").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "rules.avg").write_text(RULES, encoding="utf-8")
    good = avgpolicy.load(tmp_path)
    srv = Server(tmp_path, "--reload-interval", "0.1")
    try:
        with srv.client() as client:
            write_atomically(tmp_path / "rules.avg", RULES.replace("leerjaar in 3..8", "leerjaar in in 3..8"))
            ready = _wait_for(client, lambda r: r["status"] == "stale", "the broken reload was not reported")
            assert ready["ready"] is True
            assert good.version == ready["policy_version"]
            error = ready["last_reload_error"]
            assert "PolicyError" == error["type"]
            assert "rules.avg" in error["message"]
            assert error["diagnostics"] and {"code", "message", "file", "line"} <= set(error["diagnostics"][0])
            assert 503 == client.get("/readyz", params={"strict": "true"}).status_code
            assert "avgpolicy_policy_reload_failing 1" in client.get("/metrics").text
            answer = post(client, "/access/v1/evaluation", evaluation(4)).json()
            assert (True, good.version) == (answer["decision"], answer["context"]["policy_version"])
            write_atomically(tmp_path / "rules.avg", RULES_B)
            newer = avgpolicy.load(tmp_path)
            ready = _wait_for(client, lambda r: r["policy_version"] == newer.version, "the fixed set was not loaded")
            assert ("ok", None) == (ready["status"], ready["last_reload_error"])
            answer = post(client, "/access/v1/evaluation", evaluation(4)).json()
            assert (False, newer.version) == (answer["decision"], answer["context"]["policy_version"])
    finally:
        srv.stop()
    assert any("reload" in line and "rules.avg" in line for line in srv.log), "".join(srv.log)


def test_a_folder_rewritten_while_8_clients_ask_answers_from_complete_versions(tmp_path: Path) -> None:
    """Versions A and B are written atomically, one after the other, while 8 clients send single
    evaluations and batches. Every answer must be exactly what its reported version decides."""
    (tmp_path / "catalogue.avg").write_text(CATALOGUE, encoding="utf-8")
    (tmp_path / "rules.avg").write_text(RULES, encoding="utf-8")
    texts = {"A": RULES, "B": RULES_B}
    policies, versions = {}, {}
    for name in ("B", "A"):  # the versions as the store will load them (same file names, same content)
        write_atomically(tmp_path / "rules.avg", texts[name])
        loaded = avgpolicy.load(tmp_path)
        policies[loaded.version], versions[loaded.version] = loaded, name
    assert 2 == len(versions)
    srv = Server(tmp_path, "--reload-interval", "0.05")
    stop = threading.Event()
    seen: list[str] = []
    failures: list[str] = []

    def check(body: dict[str, Any], answer: dict[str, Any]) -> None:
        version = answer["context"]["policy_version"]
        seen.append(version)
        if version not in policies:
            failures.append(f"an answer from version {version}, which no complete write produced")
            return
        expected = expected_fields(policies[version], body)
        if (expected != answer["context"]["fields"]
                or answer["decision"] != all(fd["allowed"] for fd in expected.values())):
            failures.append(f"version {version} answered {answer} for {body}")

    def client_loop(n: int) -> None:
        with srv.client() as client:
            i = 0
            while not stop.is_set() and not failures:
                i += 1
                if (n + i) % 3:
                    body = evaluation(3 + (i % 4))  # groups 3..6: 3 and 4 differ between A and B
                    check(body, post(client, "/access/v1/evaluation", body).json())
                else:
                    batch = _batch([3, 4, 5, 6, 3, 4])
                    answers = post(client, "/access/v1/evaluations", batch).json()["evaluations"]
                    if len({a["context"]["policy_version"] for a in answers}) != 1:
                        failures.append("one batch was answered from two versions")
                    for body, answer in zip(batch["evaluations"], answers, strict=True):
                        check(body, answer)

    try:
        threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        with srv.client() as control:
            for name in ["B", "A", "B", "A"]:
                time.sleep(0.3)
                write_atomically(tmp_path / "rules.avg", texts[name])
                target = next(v for v, n in versions.items() if n == name)
                _wait_for(control, lambda r, target=target: r["policy_version"] == target, f"version {name}")
            time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        stop.set()
        srv.stop()
    assert [] == failures[:5]
    assert set(versions) == set(seen)
    assert len(seen) > 100


# ---------------------------------------------------------------------------
# decisions over HTTP == decide in process


def _to_json(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, avgpolicy.Consent):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


@given(data=st.data())
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
def test_decisions_over_http_equal_decide_in_process(http: httpx.Client, policy: avgpolicy.Policy,
                                                     data: st.DataObject) -> None:
    request = data.draw(avg_st.requests(policy))
    record = request["student"]
    assume("id" in record and type(record["id"]) is str and record["id"])
    body = {"subject": {"type": "partner", "id": request["partner"]}, "action": {"name": request["purpose"]},
            "resource": {"type": "student", "id": record["id"], "properties": _to_json(record)},
            "context": {"fields": request["fields"], "at": _to_json(request["at"])}}
    answer = post(http, "/access/v1/evaluation", body).json()
    decision = policy.decide(**request)
    assert decision.allowed == answer["decision"]
    assert json.loads(json.dumps({k: fd.to_dict() for k, fd in decision.fields.items()})) == answer["context"]["fields"]


_JSON_BAD = st.none() | st.integers(-3, 3) | st.text(max_size=4) | st.booleans() | st.lists(st.integers(), max_size=2) \
    | st.sampled_from(["2016-02-30", "2016-03-01", "5", "12AB", ""]) | st.floats(allow_nan=False, allow_infinity=False)


@given(data=st.data())
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
          deadline=None)
def test_batches_with_bad_data_over_http_equal_decide_on_the_json_record(http: httpx.Client, policy: avgpolicy.Policy,
                                                                         data: st.DataObject) -> None:
    """Ill-typed, missing and null values: every item is decided exactly as ``decide`` decides the record
    `avgpolicy explain --student` reads from the same JSON (never an allow it would not give)."""
    names = sorted(policy.model.catalogue.subject_fields)
    fields = data.draw(st.lists(st.sampled_from(sorted(policy.model.catalogue.fields)), min_size=1, max_size=4,
                                unique=True))
    items = []
    for i in range(data.draw(st.integers(1, 6))):
        record = _to_json(data.draw(avg_st.students(policy, with_consents=False)))
        record.update(data.draw(st.dictionaries(st.sampled_from(names), _JSON_BAD, max_size=3)))
        for name in data.draw(st.lists(st.sampled_from(names), max_size=2)):
            record.pop(name, None)
        record["id"] = f"s{i}"
        items.append({"resource": {"type": "student", "id": record["id"], "properties": record}})
    body = {"subject": {"type": "partner", "id": "snappet"}, "action": {"name": "leermiddelen"},
            "context": {"fields": fields, "at": AT}, "evaluations": items}
    answers = post(http, "/access/v1/evaluations", body).json()["evaluations"]
    assert len(items) == len(answers)
    for item, answer in zip(items, answers, strict=True):
        record = student_from_json(json.loads(json.dumps(item["resource"]["properties"])), policy)
        decision = policy.decide("snappet", "leermiddelen", fields, record, at=datetime.date(2026, 3, 2))
        assert decision.allowed == answer["decision"]
        assert json.loads(json.dumps({k: fd.to_dict() for k, fd in decision.fields.items()})) == \
            answer["context"]["fields"]


# ---------------------------------------------------------------------------
# the command line


def test_serve_without_policy_files_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "avgpolicy", "serve", str(tmp_path), "--port", "0"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert 2 == result.returncode
    assert "avgpolicy serve:" in result.stderr


def test_serve_with_a_broken_policy_exits_1(tmp_path: Path) -> None:
    (tmp_path / "x.avg").write_text("dataset {", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "avgpolicy", "serve", str(tmp_path), "--port", "0"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert 1 == result.returncode
    assert "x.avg:1:" in result.stderr


def test_serve_binds_loopback_by_default() -> None:
    from avgpolicy.cli import build_parser

    args = build_parser().parse_args(["serve", "policies"])
    assert ("127.0.0.1", 8181) == (args.host, args.port)


def test_consent_dates_over_http_are_read_exactly_as_the_python_api_reads_them(policy: avgpolicy.Policy) -> None:
    """Only YYYY-MM-DD is a consent date (date.fromisoformat alone also takes 20250901 and 2025-W36-1)."""
    from avgpolicy.decision import Consent
    from avgpolicy.server.shapes import student_record

    def consent(given: str) -> Any:
        record = student_record({"consents": {"beeldmateriaal": {"by": "parent", "given": given}}}, policy, "/r")
        return record["consents"]["beeldmateriaal"]

    assert Consent(by="parent", given=datetime.date(2025, 9, 1), withdrawn=None) == consent("2025-09-01")
    for loose in ("20250901", "2025-W36-1", "2025-09-01T00:00", "２０２５-09-01"):
        assert not isinstance(consent(loose), Consent), loose
