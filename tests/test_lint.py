"""One lint style and checked types for the whole tree, in `make test` (docs/architecture.md, "Types and lint").

- ``ruff check .`` reports nothing, with the rules of ``[tool.ruff]`` in ``pyproject.toml``: the
  kernel, the plugins, contrib, tests, benchmarks and scripts;
- ``mypy`` reports nothing, with ``[tool.mypy]``: the plugin API and the kernel services strictly,
  the rest of the kernel and every plugin package at mypy's default strictness;
- what ``twp plugins new`` writes, for each kind, passes both as it is.

Both run from the repository root with the virtual environment's own tools (the kernel's
``test`` extra pins them), so what a developer runs by hand and what CI runs agree.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from twpcore.scaffold import KINDS, scaffold

ROOT = Path(__file__).resolve().parent.parent


def run_tool(module: str, *args: str, timeout: float, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.fail(f"{module} is not installed in {sys.prefix}; install the kernel's test extra: pip install -e '.[test]'")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_ruff_reports_nothing() -> None:
    done = run_tool("ruff", "check", "--no-fix", "--output-format", "concise", ".", timeout=120)
    assert done.returncode == 0, f"ruff check . found problems (fix them, or see [tool.ruff] in pyproject.toml):\n{done.stdout}{done.stderr}"


def test_mypy_reports_nothing() -> None:
    # The cache (.mypy_cache, ignored by git) makes a second run take seconds; a cold one stays well under two minutes.
    done = run_tool("mypy", timeout=300)
    assert done.returncode == 0, f"mypy found problems (see [tool.mypy] in pyproject.toml):\n{done.stdout}{done.stderr}"


def test_a_scaffolded_plugin_of_each_kind_passes_ruff_and_mypy(tmp_path: Path) -> None:
    targets = [scaffold(f"acme-{kind}", kind, tmp_path) for kind in KINDS]
    linted = run_tool("ruff", "check", "--no-fix", "--output-format", "concise", "--config", str(ROOT / "pyproject.toml"), str(tmp_path),
                      timeout=120)
    assert linted.returncode == 0, f"ruff: problems in what `twp plugins new` writes (twpcore/templates/plugin/):\n{linted.stdout}{linted.stderr}"
    # An author's own mypy run, at its default strictness: only the scaffold's files are reported.  The
    # editable installs of this venv hide the kernel and twp-csta from mypy, hence MYPYPATH.
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins" / "twp-csta")])}
    files = [str(path) for target in targets for path in sorted(target.rglob("*.py"))]
    typed = run_tool("mypy", "--follow-imports", "silent", "--cache-dir", str(tmp_path / ".mypy_cache"), *files, timeout=300, cwd=tmp_path, env=env)
    assert typed.returncode == 0, f"mypy: problems in what `twp plugins new` writes (twpcore/templates/plugin/):\n{typed.stdout}{typed.stderr}"
