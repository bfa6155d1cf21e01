"""Web console: bytes transferred and time to interactive of each page, and the incoming-call pop-up delay.

    .venv/bin/python benchmarks/bench_console.py [--runs 5] [--calls 10]

Starts a throw-away `twp serve` with the demo data and the simulated PBX (the set-up of
scripts/screenshots.py), then in Debian's Chromium (Playwright, /usr/bin/chromium):

- each page (login, admin dashboard, Caller, API explorer) loaded cold (new context, empty
  cache) `--runs` times: bytes transferred (the sum of the Resource Timing `transferSize` of
  the document and every asset, compressed as sent, API calls included) and the time from
  navigation start until the page's main content is shown (its ready selector visible);
- the incoming-call pop-up, `--calls` times: Bob's phone calls Alice through the API, and
  the time from that request to the pop-up being visible (measured by the benchmark), and
  from the WebSocket event's arrival to the pop-up shown (measured in the page).

Prints medians and ranges, the machine and its load: paste them into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from playwright.sync_api import sync_playwright
from screenshots import ADMIN_PASSWORD, ARGS, USER_PASSWORD, call, prepare, start_server

PAGES = [  # name, path, who logs in first, selector shown when the page is usable
    ("login", "/", None, "form#login-form"),
    ("admin dashboard", "/admin", "admin", "#h-links"),
    ("Caller", "/app", "user", "#search-form"),
    ("API explorer", "/docs", None, "details.op"),
]


def summary(values: list[float], unit: str) -> str:
    return f"median {statistics.median(values):.1f} {unit} (min {min(values):.1f}, max {max(values):.1f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load before: {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, first_password = start_server(Path(tmp))
        try:
            setup = prepare(base, first_password)
            token = call(base, "POST", "/api/v1/auth/admin-login", {"login": "admin", "password": first_password})["token"]
            call(base, "PATCH", "/api/v1/admins/1", {"password": ADMIN_PASSWORD}, token)
            run(base, setup, args)
        finally:
            proc.terminate()
            proc.wait(20)
    print(f"load after: {os.getloadavg()[0]:.1f}")


def login_tokens(base: str) -> dict[str, dict]:
    admin = call(base, "POST", "/api/v1/auth/admin-login", {"login": "admin", "password": ADMIN_PASSWORD})
    user = call(base, "POST", "/api/v1/auth/login", {"login": "alice", "password": USER_PASSWORD, "application": "Caller"})
    return {"admin": {"token": admin["token"], "admin": admin["admin"]}, "user": {"token": user["token"], "user": user["user"]}}


def run(base: str, setup: dict, args: argparse.Namespace) -> None:
    import json

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        sessions = login_tokens(base)
        for name, path, who, ready in PAGES:
            sizes, times = [], []
            for _ in range(args.runs):
                context = browser.new_context(base_url=base, locale="en-US")
                if who:  # the tab's session, as the login page leaves it
                    key = f"twp.console.{who}"
                    context.add_init_script(f"sessionStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(sessions[who]))})")
                page = context.new_page()
                page.goto(path)
                page.locator(ready).first.wait_for()
                shown = page.evaluate("performance.now()")
                page.wait_for_load_state("networkidle")
                sizes.append(page.evaluate("""() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
                    .reduce((sum, e) => sum + (e.transferSize || 0), 0)""") / 1024)
                times.append(shown)
                context.close()
            print(f"{name:16} transferred: {summary(sizes, 'KB')}; shown after: {summary(times, 'ms')}")

        context = browser.new_context(base_url=base, locale="en-US")
        context.add_init_script(f"sessionStorage.setItem('twp.console.user', {json.dumps(json.dumps(sessions['user']))})")
        page = context.new_page()
        page.goto("/app")
        page.locator("#live.open").wait_for()
        token = sessions["admin"]["token"]
        to_visible = []
        for _ in range(args.calls):
            started = time.monotonic()
            call(base, "POST", "/api/v1/calls", {"number": "201", "device": "202", "domain_id": setup["domain_id"]}, token)
            page.get_by_role("alertdialog").wait_for()
            to_visible.append((time.monotonic() - started) * 1000)
            ringing = call(base, "GET", f"/api/v1/calls?device=201&domain_id={setup['domain_id']}", token=token)["items"]
            call(base, "POST", f"/api/v1/calls/{ringing[0]['call_id']}/hangup", {"device": "201", "domain_id": setup["domain_id"]}, token)
            page.get_by_role("alertdialog").wait_for(state="hidden")
            page.wait_for_timeout(300)
        in_page = [t["shown_ms"] for t in page.evaluate("window.__twpPopupTimings")]
        print(f"pop-up: API request to visible {summary(to_visible, 'ms')}; WebSocket event to shown {summary(in_page, 'ms')}")
        browser.close()


if __name__ == "__main__":
    main()
