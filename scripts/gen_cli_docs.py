"""Regenerate the command reference of docs/admin-guide.md from the installed ``twp --help``.

Run ``.venv/bin/python scripts/gen_cli_docs.py`` after changing a command; ``--check``
exits 1 when the guide is out of date (tests/test_cli.py runs that check).
The text between ``<!-- generated:cli:begin -->`` and ``<!-- generated:cli:end -->`` is
replaced: one ``#### `twp ...` `` heading per command, with its help at 100 columns.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "admin-guide.md"
BEGIN, END = "<!-- generated:cli:begin -->", "<!-- generated:cli:end -->"
WIDTH = "100"


def commands(p: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command that does something, top-level ``twp`` first, in the order the help lists them."""
    out = [] if words else [((), p)]
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    out += commands(sub, (*words, name))
                else:
                    out.append(((*words, name), sub))
    return out


def render() -> str:
    os.environ["COLUMNS"] = WIDTH  # argparse wraps to the terminal: fix it for a stable text
    sys.path.insert(0, str(ROOT))
    from twpcore.cli import parser

    blocks = []
    for words, sub in commands(parser()):
        name = " ".join(("twp", *words))
        blocks.append(f"#### `{name}`\n\n```text\n$ {name} --help\n{sub.format_help().rstrip()}\n```\n")
    return "\n".join(blocks)


def main() -> int:
    check = "--check" in sys.argv[1:]
    doc = GUIDE.read_text(encoding="utf-8")
    if BEGIN not in doc or END not in doc:
        print(f"{GUIDE}: markers {BEGIN} / {END} not found; put them where the reference belongs", file=sys.stderr)
        return 2
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{render()}{END}{tail}"
    if check:
        if new != doc:
            print(f"{GUIDE.relative_to(ROOT)}: the command reference is out of date; run .venv/bin/python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    GUIDE.write_text(new, encoding="utf-8")
    print(f"updated {GUIDE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
