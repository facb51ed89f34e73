"""Possible matches in the console (real HTTP against `datafactory serve`): the patterns and the pairs side by
side, a viewer's masked view and refused decision, a pair decided, then a whole pattern, each in the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from datafactory_pipelines.console.users import UserBook
from datafactory_pipelines.match_review import review_queue
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx
from tests.console_helpers import PASSWORDS, ROLES, Client
from tests.event_helpers import running_server
from tests.test_match_review import HEADER, ROWS


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    store = open_store(tmp_path / "leads.duckdb")
    # the possible match of test_match_review, twice (two people, the same kind of doubt): one pattern
    rows = [*ROWS, ["陈静", "13100131000", "chenjing66@qq.com", "绿地建材有限公司", ""],
            ["陈静", "13100131999", "chenjing66@163.com", "", ""]]
    import_file(store, write_xlsx(tmp_path / "线索.xlsx", [HEADER, *rows]))
    relink_and_curate(store)
    book = UserBook(tmp_path)
    for name in ("li", "kan"):
        book.add(name, ROLES[name], PASSWORDS[name])
    with running_server(tmp_path / "leads.duckdb", None) as base:
        yield base, tmp_path / "leads.duckdb"


def test_possible_matches_decided_in_the_console(served) -> None:
    base, store_path = served
    queue = review_queue(open_store(store_path))
    pattern = queue.groupby("pattern").size().idxmax()
    same = queue[queue["pattern"] == pattern]
    assert len(same) == 2  # 张伟's and 陈静's pairs share one pattern
    viewer = Client(base)
    viewer.sign_in("kan")
    seen = viewer.get("/console/matches")
    assert seen.status == 200 and 'id="open-pairs">' in seen.body and "decide-pairs" not in seen.body
    assert "13800138000" not in seen.body and "138****8000" in seen.body  # masked for a viewer
    first = same.iloc[0]
    refused = viewer.post("/console/matches/decide", {"csrf": seen.csrf(), f"decision_{first.id_l}_{first.id_r}": "merge"})
    assert refused.status == 403 and open_store(store_path).match_decisions().empty

    operator = Client(base)
    operator.sign_in("li")
    page = operator.get("/console/matches")
    assert "13800138000" in page.body and f'decision-{first.id_l}-{first.id_r}' in page.body
    assert "name exact" in page.body
    assert operator.post("/console/matches/decide", {"csrf": "forged", f"decision_{first.id_l}_{first.id_r}": "merge"}
                         ).status == 403
    done = operator.post("/console/matches/decide", {"csrf": page.csrf(), "note": "客户来电确认",
                                                     f"decision_{first.id_l}_{first.id_r}": "merge"})
    assert done.status == 200 and re.search(r'id="done">[^<]*1 merge, 0 apart', done.body)
    store = open_store(store_path)
    decided = store.match_decisions()
    assert decided[["id_l", "id_r", "decision", "decided_by", "note"]].values.tolist() == [
        [first.id_l, first.id_r, "merge", "li", "客户来电确认"]]
    links = store.links().set_index("record_id")["lead_id"]
    assert links[first.id_l] == links[first.id_r]

    # the rest of the pattern at once: its other pair, kept apart
    left = review_queue(store)
    rest = left[left["pattern"] == pattern]
    assert len(rest) == 1
    page = operator.get("/console/matches")
    done = operator.post("/console/matches/pattern", {"csrf": page.csrf(), "pattern": str(pattern),
                                                      "decision": "apart"})
    assert done.status == 200 and "0 merge, 1 apart" in done.body
    assert len(open_store(store_path).match_decisions()) == 2
    # decided: never asked again
    assert operator.post("/console/matches/pattern", {"csrf": page.csrf(), "pattern": str(pattern),
                                                      "decision": "merge"}).status == 409
