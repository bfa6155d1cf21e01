"""What every benchmark script shares: the machine description and writing its section of docs/benchmarks.md."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def read_text(path: str) -> str:
    """A file's text, or "" when it cannot be read (/proc files on other systems)."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def machine_info() -> dict[str, str]:
    """The machine a result was measured on: CPU model, cores, RAM, Python, OS, load average, date."""
    cpu = re.search(r"^model name\s*:\s*(.+)$", read_text("/proc/cpuinfo"), re.M)
    mem = re.search(r"^MemTotal:\s*(\d+) kB", read_text("/proc/meminfo"), re.M)
    osname = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', read_text("/etc/os-release"), re.M)
    return {
        "cpu": cpu.group(1).strip() if cpu else platform.processor() or platform.machine() or "unknown",
        "cores": str(os.cpu_count()),
        "ram": f"{int(mem.group(1)) / 1024 / 1024:.0f} GiB" if mem else "unknown",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{osname.group(1) if osname else platform.system()}, kernel {platform.release()}",
        "platform": platform.platform(),
        "load": read_text("/proc/loadavg").split(" ")[0] or "?",
        "date": datetime.date.today().isoformat(),
    }


def machine() -> str:
    """One line for a report: ``AMD EPYC, 2 CPUs, 24 GiB RAM, Linux 6.1, Python 3.11.7``."""
    m = machine_info()
    return f"{m['cpu']}, {m['cores']} CPUs, {m['ram']} RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def write_section(name: str, text: str, heading: str) -> None:
    """Replace the text between ``<!-- <name>:begin -->`` and ``<!-- <name>:end -->`` in docs/benchmarks.md.

    Without the markers the section is appended under ``heading``.
    """
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in doc and end in doc and doc.index(begin) < doc.index(end):
        doc = doc[: doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + f"\n\n## {heading}\n\n{block}\n"
    DOC.write_text(doc, encoding="utf-8")


RATE_RUNS = 7
RATE_RUN_SECONDS = 0.5


def rate(work: Callable[[], int], runs: int = RATE_RUNS, seconds: float = RATE_RUN_SECONDS) -> list[float]:
    """Items per second of ``work`` (which returns how many it handled), one figure per run of ``seconds``."""
    import time

    results = []
    for _ in range(runs):
        done = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            done += work()
        results.append(done / elapsed)
    return results


def spread(values: list[float], unit: str) -> str:
    """The last three cells of a results row: median, min and max of ``values``, one decimal, with ``unit``."""
    return f"{statistics.median(values):.1f} {unit} | {min(values):.1f} {unit} | {max(values):.1f} {unit} |"
