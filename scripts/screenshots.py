"""Regenerate the console screenshots of the guides (docs/img/console-*.png).

    .venv/bin/python scripts/screenshots.py [--out docs/img]

Starts a throw-away `twp serve` with the demo data and the simulated PBX (as `make run`
does, in a temporary folder), prepares what the pictures show through the API (the first
admin's new password, a password for alice, a users directory granted to her group), then
drives Debian's Chromium (/usr/bin/chromium, through Playwright) over the pages.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN_PASSWORD = "Screenshot-admin-2026!"
USER_PASSWORD = "Screenshot-user-2026!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode(), method=method,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port, pbx = free_port(), free_port()
    config = (ROOT / "config" / "twp.toml").read_text()
    config = config.replace('"sqlite:///var/twp.db"', f'"sqlite:///{tmp}/twp.db"').replace("port = 8080", f"port = {port}")
    config = config.replace("18882", str(pbx)).replace('traffic_interval = "30s"', 'traffic_interval = "0s"')
    (tmp / "twp.toml").write_text(config)
    with open(tmp / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "twpcore.cli", "--config", str(tmp / "twp.toml"), "serve"], cwd=tmp,
                                stdout=subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    for line in iter(proc.stdout.readline, b""):
        if match := re.match(r"^\s+password: (\S+)$", line.decode()):
            return proc, f"http://127.0.0.1:{port}", match.group(1)
    raise SystemExit(f"twp serve did not start:\n{(tmp / 'serve.log').read_text()}")


def prepare(base: str, first_password: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        try:
            token = call(base, "POST", "/api/v1/auth/admin-login", {"login": "admin", "password": first_password})["token"]
            if call(base, "GET", "/api/v1/links", token=token)["items"][0]["connected"]:
                break
        except (urllib.error.URLError, ConnectionError, IndexError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the demo PBX link never came up")
        time.sleep(0.3)
    users = {u["login"]: u for u in call(base, "GET", "/api/v1/users?limit=100", token=token)["items"]}
    call(base, "PATCH", f"/api/v1/users/{users['alice']['id']}", {"password": USER_PASSWORD}, token)
    domain = users["alice"]["domain_id"]
    directory = call(base, "POST", "/api/v1/directories", {"domain_id": domain, "name": "Staff", "connector": "twp_users"}, token)
    group = call(base, "GET", f"/api/v1/groups?domain_id={domain}", token=token)["items"][0]
    call(base, "POST", "/api/v1/authorizations", {"object_type": "directory", "object_ref": f"directory:{directory['id']}",
                                                   "subject_type": "group", "subject_id": group["id"]}, token)
    call(base, "POST", "/api/v1/authorizations", {"object_type": "application", "object_ref": "Stats", "subject_type": "user",
                                                   "subject_id": users["alice"]["id"]}, token)
    while call(base, "GET", f"/api/v1/directories/{directory['id']}", token=token)["contacts"] < 3:  # a new directory syncs at once
        if time.monotonic() > deadline + 30:
            raise SystemExit("the users directory never synced")
        time.sleep(0.2)
    return {"token": token, "domain_id": domain}


def shoot(base: str, first_password: str, setup: dict[str, Any], out: Path) -> list[Path]:
    shots: list[Path] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)

        def snap(page: Any, name: str) -> None:
            page.wait_for_timeout(400)
            path = out / f"console-{name}.png"
            page.screenshot(path=str(path))
            shots.append(path)

        admin = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 860}, base_url=base)
        admin.goto("/?as=admin")
        snap(admin, "login")
        admin.get_by_label("Login", exact=True).fill("admin")
        admin.get_by_label("Password", exact=True).fill(first_password)
        admin.get_by_role("button", name="Log in").click()
        admin.get_by_role("heading", name="Choose a new password").wait_for()
        snap(admin, "password-change")
        admin.get_by_label("New password", exact=True).fill(ADMIN_PASSWORD)
        admin.get_by_label("New password again").fill(ADMIN_PASSWORD)
        admin.get_by_role("button", name="Change the password").click()
        admin.get_by_role("heading", name="Dashboard").wait_for()
        admin.get_by_text("Staff").first.wait_for()
        snap(admin, "dashboard")
        admin.goto("/admin#/directories")
        admin.get_by_role("button", name="Sync now Staff").click()
        admin.locator("#main").get_by_role("status").filter(has_text="sync ok").wait_for()
        admin.get_by_role("button", name="Sync reports Staff").click()
        admin.locator("#form-area table").wait_for()
        snap(admin, "directories")
        admin.goto("/admin#/users")
        admin.get_by_role("button", name="New user").click()
        admin.get_by_label("Login", exact=True).fill("bad/login")
        admin.get_by_role("button", name="Create").click()
        admin.locator("[data-field=login] .field-error").wait_for()
        snap(admin, "users")

        user = browser.new_page(locale="fr-FR", viewport={"width": 1280, "height": 860}, base_url=base)
        user.goto("/")
        user.get_by_label("Identifiant", exact=True).fill("alice")
        user.get_by_label("Mot de passe", exact=True).fill(USER_PASSWORD)
        user.get_by_role("button", name="Se connecter").click()
        user.get_by_label("Nom, société, e-mail ou numéro").fill("demo")
        user.get_by_role("button", name="Rechercher", exact=True).click()
        user.get_by_role("article", name="Bob Durand").wait_for()
        # The password change above ended the set-up's admin token: log in again with the new password.
        token = call(base, "POST", "/api/v1/auth/admin-login", {"login": "admin", "password": ADMIN_PASSWORD})["token"]
        call(base, "POST", "/api/v1/calls", {"number": "201", "device": "202", "domain_id": setup["domain_id"]}, token)
        user.get_by_role("alertdialog").wait_for()
        user.locator("#popup-caller").filter(has_text="Bob Durand").wait_for()
        snap(user, "caller-popup")
        user.get_by_role("alertdialog").get_by_role("button", name="Répondre").click()
        user.locator("#calls article.call-item.connected").wait_for()
        snap(user, "caller-call")
        user.locator("#calls article.call-item").get_by_role("button", name="Raccrocher").click()
        user.get_by_role("img", name=re.compile("appels")).wait_for()
        user.get_by_role("heading", name="Statistiques").scroll_into_view_if_needed()
        snap(user, "caller-stats")

        docs = browser.new_page(locale="en-US", viewport={"width": 1280, "height": 860}, base_url=base)
        docs.goto("/docs")
        docs.get_by_label("Filter operations").fill("/api/v1/calls")
        docs.locator("details.op:not([hidden]) summary").first.click()
        snap(docs, "api-explorer")
        browser.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, password = start_server(Path(tmp))
        try:
            setup = prepare(base, password)
            for path in shoot(base, password, setup, args.out):
                print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
