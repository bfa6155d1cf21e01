"""Start-up and idle-memory benchmark of the TWP server.

    .venv/bin/python benchmarks/bench_startup.py            # print a markdown report
    .venv/bin/python benchmarks/bench_startup.py --write    # ... and update docs/benchmarks.md

What it measures (medians of ``--runs`` runs, 7 by default):

a. **start-up to ready**: from spawning ``twp --config <tmp> serve`` on a free port until
   ``GET /api/v1/health`` answers 200.  "Cold" runs start on a new SQLite store
   (migrations and first admin with its argon2 hash); "warm" runs restart on an
   existing one.  Every plugin installed in the venv is loaded: nothing is allowlisted.
b. **idle memory**: VmRSS of the server process, 2 s after it became ready.
c. **in-process**, each run in a fresh interpreter: the kernel modules' import, the first
   ``Kernel.build`` (which imports every plugin), a second one, ``create_app`` and
   ``await kernel.start()`` on a new and on an existing store;
d. **where the import time goes**: ``python -X importtime`` of the kernel modules and
   every plugin entry point, self time summed per top-level package.

Servers run with a bytecode cache in a temporary ``PYTHONPYCACHEPREFIX`` (warmed by a
first, unrecorded run), as an installed server has; the ``PYTHONDONTWRITEBYTECODE=1``
line shows what a development checkout pays on every start.  The kinds of run are
interleaved, so a change of machine load spreads over all of them; the load average at
start and end is printed with the results.

This is a benchmark, not a test: nothing here asserts a time.  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from common import machine_info, write_section
from common import read_text as _read

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
GOAL_SECONDS = 1.5
READY_TIMEOUT = 60.0
IDLE_WAIT = 2.0


def installed_plugins() -> list[str]:
    eps = sorted(metadata.entry_points(group="twp"), key=lambda e: e.name)
    return [f"{ep.name} ({ep.dist.name if ep.dist else '?'})" for ep in eps]


# -- helpers -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(directory: Path, port: int) -> Path:
    path = directory / "twp.toml"
    db = directory / "twp.db"
    path.write_text(
        "[storage]\n"
        f'url = "sqlite:///{db}"\n'
        f'backup_dir = "{directory / "backups"}"\n'
        "[http]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        "[logging]\n"
        'level = "WARNING"\n'
    )
    return path


def twp_command() -> list[str]:
    script = Path(sys.executable).parent / "twp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "twpcore.cli"]


def child_env(pycache: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TWP_LOAD_PLUGINS", "TWP_CONFIG")}
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def health(port: int) -> tuple[int, dict[str, Any]] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/api/v1/health")
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body or b"{}")
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def rss_kib(pid: int) -> int | None:
    m = re.search(r"^VmRSS:\s*(\d+) kB", _read(f"/proc/{pid}/status"), re.M)
    return int(m.group(1)) if m else None


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the process has used so far, from /proc/<pid>/stat; None where there is no /proc.

    Unlike the wall time to ready it hardly depends on what else the machine runs, so two
    trees compare on a loaded host (``ab_startup.py``).
    """
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


def serve_once(directory: Path, env: dict[str, str], *, measure_rss: bool) -> dict[str, Any]:
    """Spawn ``twp serve``, wait for health 200, optionally read RSS, stop it."""
    port = free_port()
    config = write_config(directory, port)
    log = directory / "serve.log"
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*twp_command(), "--config", str(config), "serve"], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=directory)
        try:
            body: dict[str, Any] = {}
            while True:
                if proc.poll() is not None:
                    raise BenchError(f"twp serve exited with {proc.returncode} before it was ready; log:\n{log.read_text()[-3000:]}")
                got = health(port)
                if got is not None and got[0] == 200:
                    ready = time.perf_counter() - t0
                    cpu = cpu_seconds(proc.pid)
                    body = got[1]
                    break
                if time.perf_counter() - t0 > READY_TIMEOUT:
                    raise BenchError(f"twp serve not ready after {READY_TIMEOUT:.0f} s; log:\n{log.read_text()[-3000:]}")
                time.sleep(0.005)
            rss = None
            if measure_rss:
                time.sleep(IDLE_WAIT)
                rss = rss_kib(proc.pid)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return {"ready": ready, "cpu": cpu, "rss_kib": rss, "health": body}


# -- in-process ---------------------------------------------------------------------

IMPORT_PROBE = (
    "import time; t = time.perf_counter(); "
    "import twpcore.cli, twpcore.app, twpcore.http.app, aiohttp.web; "
    "print(time.perf_counter() - t)"
)


def import_time(env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout.strip())


PROFILE_PROBE = (
    "import twpcore.cli, twpcore.app, twpcore.http.app, aiohttp.web\n"
    "from importlib import metadata\n"
    "for ep in metadata.entry_points(group='twp'):\n"
    "    try:\n"
    "        ep.load()\n"
    "    except BaseException:\n"
    "        pass\n"
)


def import_profile(env: dict[str, str]) -> dict[str, float]:
    """Seconds of import time per top-level package (``-X importtime`` self times) for what ``twp serve`` imports."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", PROFILE_PROBE], env=env, capture_output=True, text=True, cwd=ROOT)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if m:
            top = m.group(2).split(".")[0]
            totals[top] = totals.get(top, 0.0) + int(m.group(1)) / 1e6
    return totals


def child_in_process(directory: str) -> None:
    """Run in a fresh interpreter (``--child-in-process DIR``): time the kernel's phases, print JSON.

    A fresh interpreter per run, so ``Kernel.build`` includes importing every plugin, as
    it does in ``twp serve``.
    """
    import logging

    logging.disable(logging.WARNING)  # the kernel logs at INFO; keep the output parseable
    t = time.perf_counter()
    from twpcore.app import Kernel
    from twpcore.config import Config
    from twpcore.http.app import create_app

    out: dict[str, float] = {"import": time.perf_counter() - t}
    d = Path(directory)
    config = Config.from_dict({"storage": {"url": f"sqlite:///{d / 'twp.db'}"}}, source=str(d / "twp.toml"))

    async def start_stop(kernel: Kernel) -> float:
        t = time.perf_counter()
        await kernel.start()
        elapsed = time.perf_counter() - t
        await kernel.stop()
        return elapsed

    t = time.perf_counter()
    kernel = Kernel.build(config)
    out["build"] = time.perf_counter() - t
    t = time.perf_counter()
    create_app(kernel, manage_kernel=False)
    out["create_app"] = time.perf_counter() - t
    out["start_cold"] = asyncio.run(start_stop(kernel))
    t = time.perf_counter()
    kernel = Kernel.build(config)
    out["build_again"] = time.perf_counter() - t
    out["start_warm"] = asyncio.run(start_stop(kernel))
    print(json.dumps(out))


def in_process(runs: int, tmp: Path, env: dict[str, str]) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}
    for i in range(runs):
        d = tmp / f"inproc-{i}"
        d.mkdir()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child-in-process", str(d)],
                              env=env, capture_output=True, text=True, cwd=d)
        if proc.returncode != 0:
            raise BenchError(f"in-process run failed:\n{proc.stderr[-3000:]}")
        for key, value in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            results.setdefault(key, []).append(value)
    return results


# -- report -------------------------------------------------------------------------

def summary(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def fmt_s(v: float) -> str:
    return f"{v:.2f} s" if v >= 1 else f"{v * 1000:.0f} ms"


def row(label: str, values: list[float], fmt: Callable[[float], str] = fmt_s) -> str:
    med, lo, hi = summary(values)
    return f"| {label} | {fmt(med)} | {fmt(lo)} | {fmt(hi)} |"


def report(m: dict[str, str], runs: int, plugins: list[str], serve: dict[str, list[dict[str, Any]]], inproc: dict[str, list[float]],
           imports: dict[str, list[float]], profile: list[dict[str, float]]) -> str:
    def mib(kib: float) -> str:
        return f"{kib / 1024:.1f} MiB"

    cold = [r["ready"] for r in serve["cold"]]
    warm = [r["ready"] for r in serve["warm"]]
    rss = [r["rss_kib"] for r in serve["warm"] if r["rss_kib"]]
    rss_cold = [r["rss_kib"] for r in serve["cold"] if r["rss_kib"]]
    h = serve["warm"][-1]["health"]
    lines = [
        f"Measured {dt.date.today().isoformat()} with `.venv/bin/python benchmarks/bench_startup.py` "
        f"({runs} runs of each line: median, min, max).",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {m['cpu']} |",
        f"| cores | {m['cores']} |",
        f"| RAM | {m['ram']} |",
        f"| Python | {m['python']} |",
        f"| OS | {m['os']} |",
        f"| load average (1 min) at start / end | {m['load']} / {_read('/proc/loadavg').split(' ')[0] or '?'} |",
        "",
        f"Plugins loaded by the server: {h.get('plugins', {}).get('total', '?')} "
        f"({h.get('plugins', {}).get('failed', '?')} failed) — the kernel's default plugins and every "
        f"`twp` entry point installed in the venv: {', '.join(plugins) if plugins else 'none'}.",
        "No PBX link, directory or SMS instance is configured (their setup would reach external systems).",
        "",
        "| measurement | median | min | max |",
        "|---|---|---|---|",
        row("`twp serve` start-up to ready, **cold** store (migrations + first admin)", cold),
        row("`twp serve` start-up to ready, **warm** store", warm),
        row("`twp serve` start-up to ready, warm store, `PYTHONDONTWRITEBYTECODE=1` (editable checkout)", [r["ready"] for r in serve["nocache"]]),
        row("idle RSS 2 s after ready, warm store", rss, mib) if rss else "| idle RSS | n/a | | |",
        row("idle RSS 2 s after ready, cold store", rss_cold, mib) if rss_cold else "| idle RSS (cold) | n/a | | |",
        row("import of `twpcore.cli`, `twpcore.app`, `twpcore.http.app`, `aiohttp.web` (fresh interpreter)", imports["cached"]),
        row("... the same imports with `PYTHONDONTWRITEBYTECODE=1`", imports["nocache"]),
        row("in-process, fresh interpreter: import of the kernel modules", inproc["import"]),
        row("in-process: first `Kernel.build(config)` (imports and registers every plugin)", inproc["build"]),
        row("in-process: `Kernel.build(config)` again (plugins already imported)", inproc["build_again"]),
        row("in-process: `create_app(kernel)`", inproc["create_app"]),
        row("in-process: `await kernel.start()`, cold store (migrations)", inproc["start_cold"]),
        row("in-process: `await kernel.start()`, warm store", inproc["start_warm"]),
        "",
    ]
    packages = {p for run in profile for p in run}
    med = {p: statistics.median(run.get(p, 0.0) for run in profile) for p in packages}
    total = sum(med.values())
    lines += [
        f"Where the import time goes: `python -X importtime` of the kernel modules and every plugin entry point, "
        f"self time summed per top-level package, median of {len(profile)} runs (total {fmt_s(total)}; the measurement itself adds overhead):",
        "",
        "| package | import time | share |",
        "|---|---|---|",
        *[f"| `{p}` | {fmt_s(v)} | {v / total:.0%} |" for p, v in sorted(med.items(), key=lambda kv: -kv[1])[:15]],
        "",
    ]
    worst = max(statistics.median(cold), statistics.median(warm))
    verdict = "met" if worst < GOAL_SECONDS else "**not met**"
    lines.append(f"Goal (issue 2): start-up to ready under {GOAL_SECONDS} s — {verdict} "
                 f"(cold median {fmt_s(statistics.median(cold))}, warm median {fmt_s(statistics.median(warm))}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per measurement (default 7)")
    ap.add_argument("--write", action="store_true", help=f"replace the section between the bench_startup markers of {DOC.relative_to(ROOT)}")
    ap.add_argument("--child-in-process", metavar="DIR", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_in_process:
        child_in_process(args.child_in_process)
        return 0
    if args.runs < 1:
        ap.error("--runs must be at least 1")

    m = machine_info()
    plugins = installed_plugins()
    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="twp-bench-") as tmpname:
        tmp = Path(tmpname)
        pycache = str(tmp / "pycache")
        cached, nocache = child_env(pycache), child_env(None)
        try:
            warmup = tmp / "warmup"
            warmup.mkdir()
            progress("warming the bytecode cache ...")
            serve_once(warmup, cached, measure_rss=False)
            # Interleave the kinds of run so that a change of machine load during the
            # benchmark spreads over all of them instead of skewing one line.
            serve: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": [], "nocache": []}
            imports: dict[str, list[float]] = {"cached": [], "nocache": []}
            warm_dir = tmp / "cold-0"
            for i in range(args.runs):
                d = tmp / f"cold-{i}"
                d.mkdir()
                serve["cold"].append(serve_once(d, cached, measure_rss=True))
                serve["warm"].append(serve_once(warm_dir, cached, measure_rss=True))
                serve["nocache"].append(serve_once(warm_dir, nocache, measure_rss=False))
                imports["cached"].append(import_time(cached))
                imports["nocache"].append(import_time(nocache))
                progress(f"run {i + 1}/{args.runs}: cold {fmt_s(serve['cold'][-1]['ready'])}, warm {fmt_s(serve['warm'][-1]['ready'])}, "
                         f"no bytecode cache {fmt_s(serve['nocache'][-1]['ready'])}")
            progress("in-process Kernel.build / start ...")
            inproc = in_process(args.runs, tmp, cached)
            progress("import profile ...")
            profile = [import_profile(cached) for _ in range(args.runs)]
        except BenchError as exc:
            print(f"bench_startup: {exc}", file=sys.stderr)
            return 1
    text = report(m, args.runs, plugins, serve, inproc, imports, profile)
    print(text)
    if args.write:
        write_section("bench_startup", text, "Start-up (bench_startup.py)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
