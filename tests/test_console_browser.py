"""The web console in Debian's Chromium, as an admin and a user meet it (docs/admin-guide.md "Web console", docs/user-guide.md).

One `twp serve` with the demo data and the simulated PBX (pbxsim) and one browser serve the
whole module; each test opens its own browser context (its own tab storage).  axe-core checks
every page the tests visit.  Nothing is downloaded: Playwright drives /usr/bin/chromium.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twpcore.testing.servers import TwpServeProcess

playwright_api = pytest.importorskip("playwright.sync_api", reason="the test extra installs playwright")
axe_api = pytest.importorskip("axe_playwright_python.sync_playwright", reason="the test extra installs axe-playwright-python")

log = logging.getLogger(__name__)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
NEW_ADMIN_PASSWORD = "Console-admin-2026!"
USER_PASSWORD = "Alice-caller-2026!"
expect = playwright_api.expect
# A loaded CI machine runs these beside other suites: wait up to 15 s for what a user would see.
expect.set_options(timeout=15_000)


class Server:
    """A running `twp serve` and a small JSON client for the test's own set-up (never for what is under test)."""

    def __init__(self, base: str, password: str, log_path: Path):
        self.base, self.first_password, self.log_path = base, password, log_path
        self.admin_password = password

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def admin_token(self) -> str:
        return str(self.call("POST", "/api/v1/auth/admin-login", {"login": "admin", "password": self.admin_password})["token"])

    def admin_changed_password(self) -> str:
        """The admin's own password, changed from the generated one (through the API when the first test did not run)."""
        if self.admin_password == self.first_password:
            token = self.admin_token()
            self.call("PATCH", "/api/v1/admins/1", {"password": NEW_ADMIN_PASSWORD}, token)
            self.admin_password = NEW_ADMIN_PASSWORD
        return self.admin_password


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Calls ring for a minute unanswered: the pop-up tests answer them from the console.
    twp = TwpServeProcess(tmp_path_factory.mktemp("console"), demo=True, pbxsim={"answer_after": "60s"})
    with twp:
        assert twp.password is not None
        srv = Server(twp.base_url, twp.password, twp.log_path)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the PBX link is up and supervises the three devices
            try:
                links = srv.call("GET", "/api/v1/links", token=srv.admin_token())["items"]
                if links and links[0]["connected"] and links[0]["monitored"] >= 3:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"the demo PBX link never came up:\n{twp.log_text()}")
        yield srv


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (scripts/install-system-deps.sh)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(locale="en-US", base_url=server.base, viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"script errors in the page: {errors}"


def check_accessibility(page: Any, what: str) -> None:
    results = axe_api.Axe().run(page)
    assert results.violations_count == 0, f"axe-core on {what}:\n{results.generate_report()}"


def login_admin(page: Any, password: str, *, navigate: bool = True) -> None:
    if navigate:
        page.goto("/?as=admin")
    expect(page.get_by_role("heading", name="Log in to TWP")).to_be_visible()
    page.get_by_label("Login", exact=True).fill("admin")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_first_admin_login_asks_for_a_new_password_then_opens_the_live_dashboard(page, server):
    page.goto("/")
    expect(page.get_by_role("heading", name="Log in to TWP")).to_be_visible()
    check_accessibility(page, "the login page")
    # A wrong password is refused next to the form, without leaving the page.
    login_admin(page, "not-the-password")
    expect(page.get_by_role("alert")).to_contain_text("password")
    login_admin(page, server.first_password)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    check_accessibility(page, "the password change page")
    # Two different passwords, then one the API refuses (too short): each error sits under its field.
    page.get_by_label("New password", exact=True).fill("Console-admin-2026!")
    page.get_by_label("New password again").fill("something else")
    page.get_by_role("button", name="Change the password").click()
    expect(page.locator("[data-field=confirm] .field-error")).to_have_text("The two passwords differ: type the same password twice.")
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password again").fill("short")
    page.get_by_role("button", name="Change the password").click()
    expect(page.locator("[data-field=password] .field-error")).to_contain_text("at least 12 characters")
    page.get_by_label("New password", exact=True).fill(NEW_ADMIN_PASSWORD)
    page.get_by_label("New password again").fill(NEW_ADMIN_PASSWORD)
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    server.admin_password = NEW_ADMIN_PASSWORD
    expect(page.get_by_text("Password changed.")).to_be_visible()
    # The dashboard shows the demo PBX link connected, and follows the WebSocket.
    links = page.locator("section", has=page.get_by_role("heading", name="PBX links"))
    expect(links.get_by_role("row", name=re.compile(r"demo\s+mxone\s+Paris"))).to_contain_text("connected")
    expect(page.locator("#live")).to_have_text("Live")
    check_accessibility(page, "the dashboard")
    # The old password no longer opens the console; the new one does, with no second change asked.
    with pytest.raises(urllib.error.HTTPError):
        server.call("POST", "/api/v1/auth/admin-login", {"login": "admin", "password": server.first_password})
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/\?as=admin$"))
    login_admin(page, NEW_ADMIN_PASSWORD, navigate=False)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_admin_creates_company_domain_user_and_device_with_errors_next_to_the_field(page, server):
    login_admin(page, server.admin_changed_password())
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    def create(section: str, button: str, fields: dict[str, str], selects: dict[str, str] | None = None) -> Any:
        page.get_by_role("navigation").get_by_role("link", name=section).click()
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
        page.get_by_role("button", name=button).click()
        form = page.locator("form")
        for label, value in (selects or {}).items():
            form.get_by_label(label, exact=True).select_option(label=value)
        for label, value in fields.items():
            form.get_by_label(label, exact=True).fill(value)
        form.get_by_role("button", name="Create").click()
        return form

    # A company with no name: the error is under the Name field, and the field is marked invalid.
    form = create("Companies", "New company", {"Name": " "})
    expect(form.locator("[data-field=name] .field-error")).to_contain_text("name")
    expect(form.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    check_accessibility(page, "the companies page with an error")
    form.get_by_label("Name", exact=True).fill("Acme")
    form.get_by_role("button", name="Create").click()
    expect(page.locator("#main").get_by_role("status").filter(has_text="Acme created.")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Acme"))).to_be_visible()

    form = create("Domains", "New domain", {"Name": "Lyon", "Number length": "99"}, {"Company": "Acme"})
    expect(form.locator("[data-field=numbering_plan_length] .field-error")).to_contain_text("numbering_plan_length")
    form.get_by_label("Number length", exact=True).fill("4")
    form.get_by_role("button", name="Create").click()
    expect(page.get_by_role("row", name=re.compile(r"Acme\s+Lyon\s+4"))).to_be_visible()
    check_accessibility(page, "the domains page")

    form = create("Users", "New user", {"Login": "bad/login", "First name": "Zoé", "Last name": "Leroy"}, {"Domain": "Lyon"})
    expect(form.locator("[data-field=login] .field-error")).to_contain_text("no slashes")
    form.get_by_label("Login", exact=True).fill("zleroy")
    form.get_by_label("Culture", exact=True).fill("fr-FR")
    form.get_by_role("button", name="Create").click()
    expect(page.get_by_role("row", name=re.compile(r"Lyon\s+zleroy\s+Zoé\s+Leroy"))).to_be_visible()
    check_accessibility(page, "the users page")

    form = create("Devices", "New device", {"Number": "12ab"}, {"Domain": "Lyon"})
    expect(form.locator("[data-field=number] .field-error")).to_contain_text("number")
    form.get_by_label("Number", exact=True).fill("4001")
    form.get_by_label("User", exact=True).select_option(label="zleroy (Zoé Leroy)")
    form.get_by_role("button", name="Create").click()
    expect(page.get_by_role("row", name=re.compile(r"Lyon\s+4001\s+zleroy"))).to_be_visible()
    check_accessibility(page, "the devices page")

    # Granting Caller to the new user: a malformed object is refused under its field, then the grant is listed.
    page.get_by_role("navigation").get_by_role("link", name="Authorizations").click()
    form = page.locator("#grant-form")
    form.get_by_label("Granted to").select_option(label="User zleroy (Zoé Leroy) — Lyon")
    form.get_by_label("Object type").select_option("directory")
    form.get_by_label("Object", exact=True).fill("Caller")
    form.get_by_role("button", name="Grant").click()
    expect(form.locator("[data-field=object_ref] .field-error")).to_contain_text("directory:")
    check_accessibility(page, "the authorizations page with an error")
    form.get_by_label("Object type").select_option("application")
    form.get_by_role("button", name="Grant").click()
    expect(page.locator("#main").get_by_role("status").filter(has_text="Caller granted to")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile(r"application\s+Caller\s+User zleroy"))).to_be_visible()

    # What the console created is what the API holds.
    token = server.admin_token()
    users = server.call("GET", "/api/v1/users?q=zleroy", token=token)["items"]
    devices = server.call("GET", "/api/v1/devices?q=4001", token=token)["items"]
    assert [(u["first_name"], u["culture"]) for u in users] == [("Zoé", "fr-FR")]
    assert [(d["number"], d["user_id"]) for d in devices] == [("4001", users[0]["id"])]
    grants = server.call("GET", "/api/v1/authorizations?limit=1000", token=token)["items"]
    assert {(g["object_ref"], g["subject_type"], g["subject_id"]) for g in grants} >= {("Caller", "user", users[0]["id"])}


def test_admin_creates_a_directory_tests_it_and_syncs_it_with_its_report(page, server):
    login_admin(page, server.admin_changed_password())
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="Directories").click()
    page.get_by_role("button", name="New directory").click()
    form = page.locator("#create-directory")
    form.get_by_label("Domain", exact=True).select_option(label="Nice")
    form.get_by_label("Name", exact=True).fill("Nice staff")
    # An LDAP directory without its server: the connector's own option check answers under the options.
    form.get_by_label("Connector").select_option("ldap")
    expect(form.get_by_label("url", exact=True)).to_be_visible()
    form.get_by_role("button", name="Create").click()
    expect(form.locator("[data-option=url]").locator("xpath=..").locator(".field-error")).to_contain_text("options.url: is required")
    check_accessibility(page, "the new directory form with an error")
    form.get_by_label("Connector").select_option("twp_users")
    form.get_by_role("button", name="Create").click()
    row = page.get_by_role("row", name=re.compile(r"Nice staff\s+Nice\s+twp_users"))
    expect(row).to_be_visible()
    row.get_by_role("button", name="Test Nice staff").click()
    expect(page.locator("#dir-message")).to_contain_text("Nice staff: connection works (ready)")
    row.get_by_role("button", name="Sync now Nice staff").click()
    expect(page.locator("#main").get_by_role("status").filter(has_text="Nice staff: sync ok: 1 records")).to_be_visible()
    page.get_by_role("row", name=re.compile(r"Nice staff")).get_by_role("button", name="Sync reports Nice staff").click()
    history = page.locator("#form-area table")
    expect(history.get_by_role("row")).to_have_count(3)  # the header, the sync at creation and the one asked for
    expect(history).to_contain_text("api")
    check_accessibility(page, "the directories page with its sync reports")


def prepare_caller(server: Server) -> dict[str, Any]:
    """Alice (201) gets a password and, with her group, a directory of the domain's users (set-up through the API)."""
    token = server.admin_token()
    users = {u["login"]: u for u in server.call("GET", "/api/v1/users?limit=100", token=token)["items"]}
    server.call("PATCH", f"/api/v1/users/{users['alice']['id']}", {"password": USER_PASSWORD}, token)
    domain = users["alice"]["domain_id"]
    if not [d for d in server.call("GET", "/api/v1/directories?limit=1000", token=token)["items"] if d["name"] == "Staff"]:
        directory = server.call("POST", "/api/v1/directories", {"domain_id": domain, "name": "Staff", "connector": "twp_users"}, token)
        group = server.call("GET", f"/api/v1/groups?domain_id={domain}", token=token)["items"][0]
        server.call("POST", "/api/v1/authorizations", {"object_type": "directory", "object_ref": f"directory:{directory['id']}",
                                                        "subject_type": "group", "subject_id": group["id"]}, token)
        server.call("POST", "/api/v1/authorizations", {"object_type": "application", "object_ref": "Stats", "subject_type": "user",
                                                        "subject_id": users["alice"]["id"]}, token)
        deadline = time.monotonic() + 30  # a new directory syncs at once
        while server.call("GET", f"/api/v1/directories/{directory['id']}", token=token)["contacts"] < 3:  # alice, bob and carol of Paris
            assert time.monotonic() < deadline, "the users directory never synced"
            time.sleep(0.1)
    return {"token": token, "domain_id": domain}


def test_user_searches_calls_gets_a_named_popup_transfers_and_calls_back_from_the_log(page, server):
    setup = prepare_caller(server)
    page.goto("/")
    page.get_by_label("Login", exact=True).fill("alice")
    page.get_by_label("Password", exact=True).fill(USER_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # Alice's culture is fr-FR: the Caller page speaks French.
    expect(page.get_by_role("heading", name="Rechercher dans les annuaires")).to_be_visible()
    expect(page.locator("#live")).to_have_text("En direct")
    check_accessibility(page, "the Caller page")

    # An empty search is refused under the field; a name finds Bob's card with his number.
    page.get_by_role("button", name="Rechercher", exact=True).click()
    expect(page.locator("#search-form [data-field=q] .field-error")).to_have_text("Saisissez un nom ou un numéro.")
    page.get_by_label("Nom, société, e-mail ou numéro").fill("durand")
    page.get_by_role("button", name="Rechercher", exact=True).click()
    card = page.get_by_role("article", name="Bob Durand")
    expect(card).to_contain_text("Staff")
    check_accessibility(page, "the Caller page with search results")

    # Click-to-call: Bob's phone (202) rings on the simulated PBX; the call shows in Alice's calls.
    card.get_by_role("button", name="Appeler Bob Durand au 202").click()
    call = page.locator("#calls article.call-item")
    expect(call).to_contain_text("Bob Durand")
    expect(call).to_contain_text("sortant")
    call.get_by_role("button", name="Raccrocher").click()
    expect(page.locator("#calls")).to_contain_text("Aucun appel en cours.")

    # Bob calls Alice: the pop-up opens with Bob's name from the reverse lookup.
    started = time.monotonic()
    server.call("POST", "/api/v1/calls", {"number": "201", "device": "202", "domain_id": setup["domain_id"]}, setup["token"])
    popup = page.get_by_role("alertdialog", name="Appel entrant")
    expect(popup).to_be_visible()
    shown_after = time.monotonic() - started
    expect(popup.locator("#popup-caller")).to_have_text("Bob Durand")
    check_accessibility(page, "the incoming-call pop-up")
    timings = page.evaluate("window.__twpPopupTimings")
    log.warning("incoming-call pop-up: %.0f ms from the API request to visible; %.1f ms from the WebSocket event to shown",
                shown_after * 1000, timings[-1]["shown_ms"])
    popup.get_by_role("button", name="Répondre").click()
    expect(popup).to_be_hidden()
    call = page.locator("#calls article.call-item")
    expect(call).to_contain_text("en conversation")

    # Blind transfer to Carol (203): the call leaves Alice and rings at 203.
    call.get_by_role("button", name="Transférer", exact=True).click()
    call.get_by_label("Transférer vers").fill("203")
    call.get_by_role("button", name="OK").click()
    expect(page.locator("#calls")).to_contain_text("Aucun appel en cours.")
    calls_203 = server.call("GET", f"/api/v1/calls?device=203&domain_id={setup['domain_id']}", token=setup["token"])["items"]
    assert [c["state"] for c in calls_203] == ["alerting"], calls_203
    server.call("POST", f"/api/v1/calls/{calls_203[0]['call_id']}/hangup", {"device": "203", "domain_id": setup["domain_id"]}, setup["token"])

    # Forwarding all calls to 203, shown on the page and set on the PBX, then cancelled.
    forward = page.locator("#forward-form")
    forward.get_by_label("Renvoyer").select_option("immediate")
    forward.get_by_label("Vers le numéro").fill("203")
    forward.get_by_role("button", name="Renvoyer").click()
    expect(page.locator("#forwarding")).to_contain_text("Renvoi tous les appels vers 203")
    mine = server.call("GET", f"/api/v1/calls?device=201&domain_id={setup['domain_id']}", token=setup["token"])
    assert mine["forwarding"].get("immediate") == "203", mine
    page.locator("#forwarding").get_by_role("button", name="Annuler le renvoi").click()
    expect(page.locator("#forwarding")).to_contain_text("Aucun renvoi.")

    # The call log lists Bob's call, named; "Rappeler" calls him back.
    log_table = page.locator("#log")
    expect(log_table.get_by_role("row", name=re.compile("Bob Durand")).first).to_be_visible(timeout=10000)
    log_table.get_by_role("button", name="Rappeler le 202").first.click()
    expect(page.locator("#calls article.call-item")).to_contain_text("Bob Durand")
    page.locator("#calls article.call-item").get_by_role("button", name="Raccrocher").click()
    expect(page.locator("#calls")).to_contain_text("Aucun appel en cours.")

    # Statistics (Alice holds Stats): the chart of the day counts her three calls: Bob's, answered, and her two to him.
    stats = page.get_by_role("region", name="Statistiques")
    expect(stats.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^3 appels, 1 répondus et 0 manqués"))
    stats.get_by_label("Par").select_option("hour")
    expect(stats.get_by_role("img")).to_have_attribute("aria-label", re.compile(r"^3 appels, .* sur [12] périodes"))
    check_accessibility(page, "the Caller page with its statistics")


def test_api_explorer_renders_the_document_and_sends_a_request(page, server):
    page.goto("/docs")
    expect(page.get_by_role("heading", name=re.compile(r"^TWP API"))).to_be_visible()
    page.get_by_label("Filter operations").fill("/api/v1/health")
    op = page.locator("details.op:not([hidden])").filter(has_text="/api/v1/health")
    op.locator("summary").click()
    op.get_by_role("button", name="Send").click()
    expect(op.locator("pre.answer")).to_contain_text('"ready": true')
    check_accessibility(page, "the API explorer")


def test_pages_speak_the_browsers_language_and_assets_come_from_the_package(browser, server):
    context = browser.new_context(locale="fr-FR", base_url=server.base)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/")
    expect(page.get_by_role("heading", name="Connexion à TWP")).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "fr"
    # Everything the page loads comes from this server (no CDN, nothing from the internet).
    assert requested and all(u.startswith(server.base) for u in requested), requested
    context.close()
    # curl and API clients keep the JSON index at /.
    assert server.call("GET", "/")["openapi"] == "/api/v1/openapi.json"
