"""Start-up A/B: two source trees of TWP started by the same venv, turn about, on one host.

    git archive HEAD~3 | tar -x -C /tmp/ab-old        # the tree before a change (no git write)
    .venv/bin/python benchmarks/ab_startup.py /tmp/ab-old .     # old against this checkout

A shared host's load changes from minute to minute, so figures of two benchmarks taken
at different times do not compare; here each run starts tree A then tree B (cold store,
then warm store) before the next run, and the load average is printed with the medians.
Besides the wall time to ready, each start's CPU time up to ready (user + system, from
``/proc``) is reported: it hardly depends on the host's load, so it is the figure to
compare on a busy machine.  Each tree runs with ``PYTHONPATH`` set to the tree and to every package folder under its
``plugins/`` and ``contrib/``, so its kernel and its plugins are imported instead of the
venv's editable installs; the entry points (which plugins load) are the venv's, the same
for both.  Bytecode is cached per tree (``PYTHONPYCACHEPREFIX``), warmed by one start.

This is a benchmark, not a test: nothing here asserts a time.  See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import bench_startup
from bench_startup import BenchError, child_env, fmt_s, serve_once
from common import machine, read_text


def tree_path(tree: Path) -> str:
    """``PYTHONPATH`` for a source tree: the tree (``twpcore``) and each plugin package folder."""
    folders = [tree] + sorted(p.parent for p in [*tree.glob("plugins/*/pyproject.toml"), *tree.glob("contrib/*/pyproject.toml")])
    return ":".join(str(f.resolve()) for f in folders)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="first source tree (for example the tree before a change)")
    ap.add_argument("b", type=Path, help="second source tree (for example this checkout)")
    ap.add_argument("--runs", type=int, default=7, help="runs per tree and kind (default 7)")
    ap.add_argument("--ready-timeout", type=float, default=bench_startup.READY_TIMEOUT,
                    help=f"seconds a start may take before the benchmark gives up (default {bench_startup.READY_TIMEOUT:.0f}; more on a loaded host)")
    args = ap.parse_args(argv)
    bench_startup.READY_TIMEOUT = args.ready_timeout
    for tree in (args.a, args.b):
        if not (tree / "twpcore" / "__init__.py").is_file():
            ap.error(f"{tree}: not a TWP source tree (no twpcore/__init__.py); give the folder that holds twpcore/")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    load_start = read_text("/proc/loadavg").split(" ")[0] or "?"
    results: dict[str, dict[str, list[float]]] = {k: {"cold": [], "warm": [], "cold_cpu": [], "warm_cpu": []} for k in ("a", "b")}
    with tempfile.TemporaryDirectory(prefix="twp-ab-") as tmpname:
        tmp = Path(tmpname)
        envs = {}
        for key, tree in (("a", args.a), ("b", args.b)):
            env = child_env(str(tmp / f"pycache-{key}"))
            env["PYTHONPATH"] = tree_path(tree)
            envs[key] = env
            (tmp / f"{key}-warm").mkdir()
        try:
            for key in envs:  # warm each tree's bytecode cache and create its warm store
                serve_once(tmp / f"{key}-warm", envs[key], measure_rss=False)
            for i in range(args.runs):
                for key in envs:
                    cold = tmp / f"{key}-cold-{i}"
                    cold.mkdir()
                    for kind, folder in (("cold", cold), ("warm", tmp / f"{key}-warm")):
                        got = serve_once(folder, envs[key], measure_rss=False)
                        results[key][kind].append(got["ready"])
                        if got["cpu"] is not None:
                            results[key][f"{kind}_cpu"].append(got["cpu"])
                print(f"run {i + 1}/{args.runs}: " + ", ".join(
                    f"{key} cold {fmt_s(results[key]['cold'][-1])} warm {fmt_s(results[key]['warm'][-1])}" for key in envs),
                    file=sys.stderr, flush=True)
        except BenchError as exc:
            print(f"ab_startup: {exc}", file=sys.stderr)
            return 1
    load_end = read_text("/proc/loadavg").split(" ")[0] or "?"
    print(f"{machine()}; load average (1 min) {load_start} at start, {load_end} at end; {args.runs} runs per line (median, min-max)")
    print()
    print("| `twp serve` start-up to ready | A: " + str(args.a) + " | B: " + str(args.b) + " |")
    print("|---|---|---|")
    labels = {"cold": "wall time, cold store", "warm": "wall time, warm store",
              "cold_cpu": "CPU time of the process (user + system), cold store", "warm_cpu": "CPU time of the process, warm store"}
    for kind, label in labels.items():
        if not results["a"][kind] or not results["b"][kind]:
            continue
        cells = [f"{fmt_s(statistics.median(v))} ({fmt_s(min(v))}-{fmt_s(max(v))})" for v in (results["a"][kind], results["b"][kind])]
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
