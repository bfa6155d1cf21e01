"""The OpenAPI document at /api/v1/openapi.json says exactly what the server serves and accepts."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

UNDOCUMENTED = {("GET", "/"), ("GET", "/api/v1/openapi.json")}  # the document itself and the index
SAMPLE = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": [], "object": {}, "null": None}
WRONG = {"string": 12345, "integer": "12345", "number": "12345", "boolean": "yes", "array": "x", "object": "x"}


def served_routes(server) -> set[tuple[str, str]]:
    app = server.client.server.app
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        out.add((route.method, route.resource.canonical))
    return out - UNDOCUMENTED


def operations(doc):
    return [(m.upper(), p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def concrete(path: str) -> str:
    return re.sub(r"{(\w+)}", lambda m: "Caller" if m.group(1) == "application" else ("c-1" if m.group(1) == "call_id" else "1"), path)


def types_of(schema) -> list[str]:
    t = schema.get("type", "string")
    return t if isinstance(t, list) else [t]


async def test_the_document_lists_exactly_the_served_routes_and_is_valid_openapi(twp_server):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    documented = {(m, p) for m, p, _ in operations(doc)}
    served = served_routes(twp_server)
    assert documented - served == set(), "documented but not served"
    assert served - documented == set(), "served but not documented"
    assert len(documented) > 60
    validate(doc)  # openapi-spec-validator: a well-formed OpenAPI 3.1 document
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids)), "operationIds are unique"
    for method, path, op in operations(doc):
        assert op["summary"] and op["summary"] != path, f"{method} {path} has no summary"
        assert op["x-twp-access"] in ("public", "user", "admin", "any")
        if op["x-twp-access"] == "public":
            assert op["security"] == []
        else:
            assert op["security"] == [{"bearer": []}] and {"401", "403"} <= set(op["responses"]), f"{method} {path}"
        params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert params == set(re.findall(r"{(\w+)}", path)), f"{method} {path}: path parameters"


async def test_every_non_public_operation_refuses_a_caller_without_a_token(twp_server):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    anonymous = twp_server.anonymous
    open_doors = []
    for method, path, op in operations(doc):
        if op["x-twp-access"] == "public":
            continue
        answer = await anonymous.call(method, concrete(path), {} if "requestBody" in op else None)
        if anonymous.last_status != 401 or answer.get("error") != "unauthorized":
            open_doors.append(f"{method} {path} -> {anonymous.last_status}")
    assert not open_doors
    # The public ones answer without a token.
    assert (await anonymous.get("/api/v1/health"))["status"] in ("ok", "degraded")


async def test_request_bodies_accept_what_the_schema_says_and_nothing_else(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    problems, strict, checked = [], 0, 0
    for method, path, op in operations(doc):
        if "requestBody" not in op or op["x-twp-access"] == "user":
            continue
        client = twp_server.anonymous if op["x-twp-access"] == "public" else admin
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        props = schema.get("properties", {})
        required = {name: SAMPLE[types_of(props.get(name, {}))[0]] for name in schema.get("required", [])}
        url = concrete(path)
        if schema.get("additionalProperties") is False:
            answer = await client.call(method, url, {**required, "zz_unknown": 1})
            if client.last_status == 404 and "{" in path:
                continue  # the path names nothing here (a PBX link, say); the handler may look for it first
            strict += 1
            if client.last_status != 400 or answer.get("field") != "zz_unknown" or "zz_unknown" not in answer["detail"]:
                problems.append(f"{method} {path}: unknown field -> {client.last_status} {answer}")
        for name in schema.get("required", []):
            answer = await client.call(method, url, {k: v for k, v in required.items() if k != name})
            if client.last_status != 400 or answer.get("field") != name:
                problems.append(f"{method} {path}: without required {name} -> {client.last_status} {answer}")
        for name, prop in props.items():
            wrong = WRONG.get(types_of(prop)[0])
            if wrong is None or any(isinstance(wrong, type(SAMPLE[t])) and t != "number" for t in types_of(prop) if t in SAMPLE):
                continue
            checked += 1
            answer = await client.call(method, url, {**required, name: wrong})
            if client.last_status != 400 or answer.get("field") != name:
                problems.append(f"{method} {path}: {name}={wrong!r} -> {client.last_status} {answer}")
    assert not problems, "\n".join(problems)
    assert strict >= 20 and checked >= 60


async def test_a_body_that_is_not_a_json_object_is_refused(twp_server, admin):
    for raw, words in ((b"{not json", "not valid JSON"), (b"[1, 2]", "must be a JSON object, got list"), (b"", "a JSON object body is required")):
        answer = await admin.call("POST", "/api/v1/companies", raw=raw)
        assert admin.last_status == 400 and words in answer["detail"], (raw, answer)


async def test_documented_success_statuses_are_the_ones_answered(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    paths = doc["paths"]
    company = await admin.call("POST", "/api/v1/companies", {"name": "SSDEI"})
    assert str(admin.last_status) in paths["/api/v1/companies"]["post"]["responses"] and admin.last_status == 201
    await admin.call("PATCH", f"/api/v1/companies/{company['id']}", {"description": "x"})
    assert str(admin.last_status) in paths["/api/v1/companies/{id}"]["patch"]["responses"]
    domain = await admin.create("domains", company_id=company["id"], name="Paris")
    group = await admin.create("groups", domain_id=domain["id"], name="All")
    user = await admin.create("users", domain_id=domain["id"], login="jdoe")
    await admin.call("POST", f"/api/v1/groups/{group['id']}/members", {"user_id": user["id"]})
    assert admin.last_status == 204 and "204" in paths["/api/v1/groups/{id}/members"]["post"]["responses"]
    await admin.call("DELETE", f"/api/v1/companies/{company['id']}")
    assert admin.last_status == 204 and "204" in paths["/api/v1/companies/{id}"]["delete"]["responses"]
    await admin.call("POST", "/api/v1/auth/logout")
    assert admin.last_status == 204 and "204" in paths["/api/v1/auth/logout"]["post"]["responses"]


async def test_the_document_declares_the_answers_and_bounds_the_server_enforces(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    paths = doc["paths"]
    # POST /calls creates a call: 201, as the server answers (tests/test_telephony_api.py); call control may meet the PBX's refusals.
    make_call = paths["/api/v1/calls"]["post"]["responses"]
    assert "201" in make_call and "200" not in make_call
    assert {"409", "501", "503"} <= set(make_call) and {"409", "501", "503"} <= set(paths["/api/v1/calls/{call_id}/hangup"]["post"]["responses"])
    assert "409" in paths["/api/v1/companies"]["post"]["responses"] and "409" in paths["/api/v1/companies/{id}"]["delete"]["responses"]
    assert "503" in paths["/api/v1/health"]["get"]["responses"] and "429" in paths["/api/v1/auth/login"]["post"]["responses"]
    for method, path, op in operations(doc):
        for p in op.get("parameters", []):
            if p["in"] == "path" and p["name"] in ("id", "member"):
                assert p["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, (method, path, p)
    limit = next(p for p in paths["/api/v1/users"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    # ...and the server refuses what the document rules out.
    for value in ("0", "1001"):
        answer = await admin.call("GET", "/api/v1/users", params={"limit": value})
        assert admin.last_status == 400 and answer["field"] == "limit", answer
    answer = await admin.call("GET", "/api/v1/users/0")
    assert admin.last_status == 400 and answer["field"] == "id", answer


async def test_a_method_a_fixed_path_lacks_answers_405_with_allow_not_a_400_about_an_id(twp_server, admin):
    # /devices/states, /devices/forwarding... sit next to /devices/{id}: PATCH on them is no "device id states".
    for path, allowed in (("/api/v1/devices/states", "GET"), ("/api/v1/devices/forwarding", "PUT"), ("/api/v1/me/lists/order", "PUT")):
        resp = await twp_server.client.request("PATCH", path, headers=admin.headers(), json={})
        assert resp.status == 405 and allowed in resp.headers["Allow"], (path, resp.status, await resp.text())
    # ...while a wrong id on the {id} path is still named.
    answer = await admin.call("PATCH", "/api/v1/devices/statez", {})
    assert admin.last_status == 400 and answer["field"] == "id", answer


async def test_an_admin_cannot_disable_or_demote_their_own_account_nor_blank_its_password(twp_server, admin):
    me = admin.info["admin"]["id"]
    for field in ("enabled", "super_user"):
        answer = await admin.call("PATCH", f"/api/v1/admins/{me}", {field: False})
        assert admin.last_status == 409 and answer["field"] == field, answer
    for short in ("", "eleven-char"):
        answer = await admin.call("PATCH", f"/api/v1/admins/{me}", {"password": short})
        assert admin.last_status == 400 and answer["field"] == "password", answer


async def test_rules_across_fields_are_stated_in_the_document_and_answer_400(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    log = doc["paths"]["/api/v1/users/{id}/call-logs"]["get"]
    assert "to must be after from" in log["x-twp-rules"] and "to must be after from" in log["responses"]["400"]["description"]
    assert any("device and domain_id" in rule for rule in doc["paths"]["/api/v1/calls"]["post"]["x-twp-rules"])
    # An object named in the body or the query may not exist: the document says 404 there too.
    assert "404" in doc["paths"]["/api/v1/devices"]["post"]["responses"] and "404" in doc["paths"]["/api/v1/directories/reverse"]["get"]["responses"]
    company = await admin.create("companies", name="Rules")
    domain = await admin.create("domains", company_id=company["id"], name="D")
    user = await admin.create("users", domain_id=domain["id"], login="rita")
    url = f"/api/v1/users/{user['id']}/call-logs"
    for params, words in (({"from": "2026-11-22", "to": "2026-11-01"}, "must come after from"),
                          ({"to": ""}, "expected a date"),  # the document's format: date / date-time, not "anything or nothing"
                          ({"from": "2026-W47-1"}, "expected a date"),  # ISO week dates are no RFC 3339 date
                          ({"from": "2026-11-22T08:30:00"}, "with its offset")):
        answer = await admin.call("GET", url, params=params)
        assert admin.last_status == 400 and words in answer["detail"], (params, answer)
    assert (await admin.get(url, params={"from": "2026-11-22T08:30:00+01:00", "to": "2026-11-23"}))["items"] == []


async def test_a_body_whose_fields_are_all_optional_may_be_left_out(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    assert doc["paths"]["/api/v1/companies/{id}"]["patch"]["requestBody"]["required"] is False
    assert doc["paths"]["/api/v1/companies"]["post"]["requestBody"]["required"] is True
    company = await admin.create("companies", name="Optional")
    assert (await admin.call("PATCH", f"/api/v1/companies/{company['id']}", status=200))["name"] == "Optional"
