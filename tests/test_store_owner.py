"""Only store/ speaks SQL to the lead store: library code elsewhere uses typed store methods and the change
object (`with store.change(purpose) as tx:`), never a connection, the store's private members or SQL."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = [ROOT / "datafactory_pipelines", ROOT / "assets", ROOT / "sensors"]
STORE = ROOT / "datafactory_pipelines" / "store"
# the linkage engine's own in-memory DuckDB scoring databases (never the store): named one by one
SCORING_DATABASES = {ROOT / "datafactory_pipelines" / "linkage" / name
                     for name in ("sql.py", "engine.py", "clustering.py", "incremental.py")}
FORBIDDEN = {
    "SQL run on a connection": re.compile(r"\.execute(many)?\("),
    "a store connection": re.compile(r"\b_connect\b"),
    "a store's private member": re.compile(r"SLF001"),
    "the store's diagnostic transaction": re.compile(r"\.transaction\(\)"),
}


def _library_files() -> list[Path]:
    return sorted(path for folder in LIBRARY for path in folder.rglob("*.py")
                  if STORE not in path.parents and path not in SCORING_DATABASES)


def test_no_sql_connection_or_private_store_member_outside_store() -> None:
    files = _library_files()
    assert len(files) > 50  # the scan sees the library
    found = [f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()}"
             for path in files
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             for what, pattern in FORBIDDEN.items() if pattern.search(line)]
    assert found == []


def test_the_scan_would_see_a_violation(tmp_path: Path) -> None:
    lines = ['    con.execute("SELECT 1")', "    con = store._connect()", "    x = store._query(q)  # noqa: SLF001",
             "    with store.transaction() as con:", "    rows = values_sql(config)"]
    hits = [[what for what, pattern in FORBIDDEN.items() if pattern.search(line)] for line in lines]
    assert hits == [["SQL run on a connection"], ["a store connection"], ["a store's private member"],
                    ["the store's diagnostic transaction"], []]


def test_the_history_chain_is_appended_in_one_place() -> None:
    """`INSERT INTO history` appears once in the whole library: the shared SQL the one writer's backends use."""
    inserts = [f"{path.relative_to(ROOT)}" for folder in LIBRARY for path in folder.rglob("*.py")
               if re.search(r"INSERT INTO history\b", path.read_text(encoding="utf-8"))]
    assert inserts == ["datafactory_pipelines/store/shared_sql.py"]
    heads = [f"{path.relative_to(ROOT)}" for folder in LIBRARY for path in folder.rglob("*.py")
             if "ORDER BY seq DESC LIMIT 1" in path.read_text(encoding="utf-8")]
    assert heads == ["datafactory_pipelines/store/shared_sql.py"]


def test_a_change_is_one_transaction_through_a_typed_object_without_a_connection(tmp_path: Path) -> None:
    import pandas as pd

    from datafactory_pipelines.history import verify_chain
    from datafactory_pipelines.store import open_store

    store = open_store(tmp_path / "leads.duckdb")
    rows = [("L00000001", "title", "", "经理"), ("L00000001", "title", "经理", "总监")]
    with store.change("test: two appends") as tx:
        assert not hasattr(tx, "execute") and not hasattr(tx, "sql")  # typed methods only
        tx.append_history(rows, "edit", "李娜", "客户来电")  # a few rows, no frames
        frame = pd.DataFrame({"lead_id": ["L00000002"], "field": ["company"], "old_value": [""],
                              "new_value": ["星海科技"]})
        assert tx.append_history(frame, "rule", pd.Series(["rule a"]), pd.Series(["event e-1"])) == (3, 3)
        tx.add_meta_value("test_key", "kept")
    try:
        with store.change("test: fails half-way") as tx:
            tx.append_history(rows, "edit", "李娜", "rolled back")
            tx.add_meta_value("other_key", "gone")
            raise RuntimeError("the change's next write failed")
    except RuntimeError:
        pass
    history = store.history()
    assert history["seq"].tolist() == [1, 2, 3] and history["actor"].tolist() == ["李娜", "李娜", "rule a"]
    assert verify_chain(history).ok
    with store.reading() as tx:
        assert tx.meta_value("test_key") == "kept" and tx.meta_value("other_key") is None
