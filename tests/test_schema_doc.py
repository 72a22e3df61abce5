"""docs/SCHEMA.md is the database: every table and column it documents exists, nothing is left out, and
its example queries run against a real runs.db."""

import re
import sqlite3

from conftest import ROOT

from core.store import Store

DOC = (ROOT / "docs" / "SCHEMA.md").read_text()


def documented() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, body in re.findall(r"^### `(\w+)`\n(.*?)(?=^### |^## |\Z)", DOC, re.S | re.M):
        out[name] = re.findall(r"^\| (\w+) \| [A-Z]+ \|", body, re.M)
    return out


def test_every_table_and_column_is_documented_and_exists(tmp_path):
    store = Store(tmp_path / "runs.db")
    conn = store.conn
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    real = {t: [c[1] for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    store.close()
    assert documented() == real


def test_the_example_queries_run(tmp_path):
    Store(tmp_path / "runs.db").close()
    queries = re.findall(r"```sql\n(.*?)```", DOC, re.S)
    assert len(queries) >= 4
    conn = sqlite3.connect(tmp_path / "runs.db")
    for q in queries:
        conn.execute(q).fetchall()  # raises on a wrong table, column or syntax
    conn.close()
