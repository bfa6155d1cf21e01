"""The OpenAPI document at /api/v1/openapi.json says exactly what the server serves and accepts."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from twpcore.http.console import ASSET_PREFIX, PAGES

# The document itself, the index and the web console's pages and assets (not API endpoints).
UNDOCUMENTED = {("GET", "/api/v1/openapi.json"), ("GET", ASSET_PREFIX + "{path}")} | {("GET", path) for path in PAGES}
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
            if client.last_status == 404 and "{" in path:
                break  # as above: the path names nothing here
            if client.last_status != 400 or answer.get("field") != name:
                problems.append(f"{method} {path}: without required {name} -> {client.last_status} {answer}")
        for name, prop in props.items():
            wrong = WRONG.get(types_of(prop)[0])
            if wrong is None or any(isinstance(wrong, type(SAMPLE[t])) and t != "number" for t in types_of(prop) if t in SAMPLE):
                continue
            checked += 1
            answer = await client.call(method, url, {**required, name: wrong})
            if client.last_status == 404 and "{" in path:
                break  # as above: the path names nothing here
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
    for value in ("0", "1001", ""):  # "" is no integer either: leave the parameter out for the default
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


async def test_free_form_parts_of_a_body_say_what_the_server_refuses_in_them(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    value = doc["components"]["schemas"]["JsonValue"]
    assert {"type": "number", "minimum": -(2**63), "maximum": 2**63 - 1} in value["anyOf"]
    body = doc["paths"]["/api/v1/directories"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["options"]["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}
    push = doc["paths"]["/api/v1/me/directories/{name}/push"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    # Any item is accepted: a contact is an object of fields, anything else is skipped and reported in the answer.
    assert push["properties"]["contacts"]["items"]["$ref"] == "#/components/schemas/JsonValue"
    assert push["additionalProperties"] == {"$ref": "#/components/schemas/JsonValue"}  # extra keys are read, so checked, too
    # The server refuses there what JsonValue rules out: an integer past 2^63, and a float as well (1e19 is an integer to JSON Schema).
    company = await admin.create("companies", name="Free")
    domain = await admin.create("domains", company_id=company["id"], name="D")
    base = {"domain_id": domain["id"], "name": "Sql", "connector": "sql"}
    for raw in (b'{"deep": [{"n": 9223372036854775808}]}', b'{"deep": [{"n": 1e19}]}', b'{"deep": -1.0e300}'):
        answer = await admin.call("POST", "/api/v1/directories", raw=b'{"domain_id": %d, "name": "Sql", "connector": "sql", "options": %s}'
                                  % (domain["id"], raw))
        assert admin.last_status == 400 and answer["field"] == "options" and "2^63" in answer["detail"], (raw, answer)
    # What fits reaches the handler, which judges the options themselves (the sql connector wants a dsn...): no 400 about the number.
    answer = await admin.call("POST", "/api/v1/directories", {**base, "options": {"deep": [{"n": 2**63 - 1, "f": 1.5}]}})
    assert "2^63" not in str(answer), answer


async def test_arrays_of_ids_take_positive_integers_and_read_1_0_as_1(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    for path, method, field in (("/api/v1/admins/{id}/companies", "put", "companies"), ("/api/v1/me/lists/order", "put", "ids"),
                                ("/api/v1/me/lists/{id}/contacts", "put", "contact_ids")):
        op = doc["paths"][path][method]
        items = op["requestBody"]["content"]["application/json"]["schema"]["properties"][field]["items"]
        assert items["type"] == "integer" and items["minimum"] == 1, (path, items)
        assert "404" in op["responses"], path  # an id in the array may name nothing
    company = await admin.create("companies", name="Ids")
    limited = await admin.create("admins", login="limited-ids", password="a long enough password", super_user=False)
    url = f"/api/v1/admins/{limited['id']}/companies"
    # A client generated from the document may send 1.0 for 1 (JSON Schema counts it an integer): the server reads it as 1.
    await admin.put(url, {"companies": [float(company["id"])]})
    assert (await admin.get(url))["companies"] == [company["id"]]
    for companies, words in (([-1], "field companies[0]: expected 1-"), ([1.5], "field companies[0]: expected integer"),
                             (["1"], "field companies[0]: expected integer")):
        answer = await admin.call("PUT", url, {"companies": companies})
        assert admin.last_status == 400 and answer["field"] == "companies" and words in answer["detail"], (companies, answer)


async def test_the_events_websocket_is_declared_and_a_plain_get_answers_426(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")
    events = doc["paths"]["/api/v1/events"]["get"]
    assert {"101", "426"} <= set(events["responses"]) and "200" not in events["responses"]
    assert any("Upgrade: websocket" in rule for rule in events["x-twp-rules"])
    resp = await twp_server.client.get("/api/v1/events", headers=admin.headers())
    answer = await resp.json()
    assert resp.status == 426 and resp.headers["Upgrade"] == "websocket", (resp.status, answer)
    assert answer["error"] == "upgrade_required" and "WebSocket client" in answer["detail"], answer
    # Without a token it is still a 401 first, as the document says of every non-public operation.
    assert (await twp_server.client.get("/api/v1/events")).status == 401
    # A real handshake opens the socket (tests/test_events_ws.py follows what it carries).
    async with twp_server.client.ws_connect("/api/v1/events", headers=admin.headers()) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "system.hello"


async def test_choices_and_rules_the_server_checks_are_in_the_document(twp_server, admin):
    doc = await twp_server.anonymous.get("/api/v1/openapi.json")

    def body(path, method="post"):
        return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]

    grant = body("/api/v1/authorizations")["properties"]
    assert grant["subject_type"]["enum"] == ["user", "group", "phone_queue", "intercom_group"]
    assert {"application", "directory", "calendar"} <= set(grant["object_type"]["enum"])
    assert body("/api/v1/lockouts/unlock")["properties"]["scope"]["enum"] == ["login", "admin", "address"]
    assert body("/api/v1/devices")["anyOf"] == [{"required": ["user_id"]}, {"required": ["domain_id"]}]
    assert any("name is a parameter the server knows" in rule for rule in doc["paths"]["/api/v1/parameter-values"]["post"]["x-twp-rules"])
    plan = doc["paths"]["/api/v1/domains/{id}/dialing-plan"]["put"]
    assert "422" in plan["responses"] and body("/api/v1/domains/{id}/dialing-plan", "put")["additionalProperties"] is False
    assert body("/api/v1/user-imports")["properties"]["name"]["pattern"]
    assert {"401", "429"} <= set(doc["paths"]["/api/v1/auth/password-reset"]["post"]["responses"])  # a wrong code; a lock-out
    # ...and the server answers as they say.
    company = await admin.create("companies", name="Choices")
    domain = await admin.create("domains", company_id=company["id"], name="D")
    answer = await admin.call("POST", "/api/v1/devices", {"number": "201"})
    assert admin.last_status == 400 and answer["field"] == "domain_id", answer
    answer = await admin.call("PUT", f"/api/v1/domains/{domain['id']}/dialing-plan", {"default": True, "rules": []})
    assert admin.last_status == 422 and answer["field"] == "default", answer
    answer = await admin.call("POST", "/api/v1/user-imports", {"domain_id": domain["id"], "name": " ", "source": "pbx", "link": "x"})
    assert admin.last_status == 400 and answer["field"] == "name", answer
    answer = await admin.call("POST", "/api/v1/lockouts/unlock", {"scope": "", "subject": "x"})
    assert admin.last_status == 400 and answer["field"] == "scope", answer
