"""What a server start imports: Alembic only to migrate, ldap3 only when LDAP is used.

Both were about 0.2 s of every start on the benchmark machine (docs/benchmarks.md,
"Start-up"); these tests keep them out of a start that does not need them, and check
that the shortcut for a store already at the head (``twpcore.store.scripted_head``)
agrees with Alembic and never skips a migration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from alembic import command

from twpcore.store import Store, scripted_head


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (nothing imported yet); it prints one JSON object."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_scripted_head_is_alembics_head():
    assert scripted_head() is not None
    assert scripted_head() == Store("sqlite://").head_revision()


def _script(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / name).write_text(f'"""A migration."""\nfrom alembic import op\n\nrevision{revision}\ndown_revision{down}\n')


def test_the_scripted_head_reads_literals_and_gives_up_on_anything_else(tmp_path):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "__init__.py").write_text("")
    _script(versions, "0001_a.py", " = '0001'", " = None")
    _script(versions, "0002_b.py", ': str = "0002"', ': str | None = "0001"')
    assert scripted_head(versions) == "0002"
    _script(versions, "0003_c.py", ' = "0003"', ' = ("0002",)')
    assert scripted_head(versions) == "0003"
    # Two heads: Alembic decides (and refuses), the shortcut does not guess.
    _script(versions, "0004_d.py", ' = "0004"', ' = "0002"')
    assert scripted_head(versions) is None
    (versions / "0004_d.py").unlink()
    # A revision computed at import time cannot be read without importing: no shortcut.
    _script(versions, "0004_e.py", ' = "00" + "04"', ' = "0003"')
    assert scripted_head(versions) is None
    (versions / "0004_e.py").unlink()
    (versions / "0004_f.py").write_text('"""No revision line at all."""\n')
    assert scripted_head(versions) is None


def test_a_store_at_the_head_starts_without_importing_alembic(tmp_path):
    url = f"sqlite:///{tmp_path}/twp.db"
    store = Store(url)
    head = store.upgrade()[1]
    store.close()
    seen = run_python(f"""
        import json, sys
        from twpcore.store import Store
        store = Store({url!r})
        before, after = store.upgrade()
        print(json.dumps({{"before": before, "after": after, "alembic": "alembic" in sys.modules}}))
    """)
    assert seen == {"before": head, "after": head, "alembic": False}


def test_a_store_behind_the_head_is_still_migrated(tmp_path):
    url = f"sqlite:///{tmp_path}/twp.db"
    store = Store(url)
    with store.engine.begin() as conn:
        command.upgrade(store.alembic_config(conn), "0007")
    store.close()
    store = Store(url)
    try:
        assert store.upgrade() == ("0007", store.head_revision())
    finally:
        store.close()


def test_loading_the_ldap_plugin_imports_ldap3_only_when_used():
    seen = run_python("""
        import json, sys
        import twp_ldap.plugin, twp_ldap.auth
        loaded = "ldap3" in sys.modules
        from twp_ldap.auth import bind_dn
        dn = bind_dn("uid=?,ou=people,dc=example,dc=org", "a,b")
        print(json.dumps({"at_load": loaded, "after_use": "ldap3" in sys.modules, "dn": dn}))
    """)
    assert seen == {"at_load": False, "after_use": True, "dn": r"uid=a\,b,ou=people,dc=example,dc=org"}
