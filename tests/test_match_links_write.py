"""A change's match links are written as a difference: the stored links of its relinked records that come back
unchanged stay where they are, the changed and gone ones are replaced or deleted, the new ones added; a full
pass writes them all. The table ends exactly as "delete every link touching the change, insert its links"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datafactory_pipelines.store.schema import MATCH_LINK_COLUMNS
from tests.backends import both_backends, store_in

pytestmark = both_backends


def _links(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=MATCH_LINK_COLUMNS).astype({"record_l": "int64", "record_r": "int64"})


def _on_postgres(store) -> bool:  # noqa: ANN001 - either backend's store
    return type(store).__name__.startswith("Postgres")


def _stored(store) -> pd.DataFrame:  # noqa: ANN001
    """The stored links with where each row lies on PostgreSQL (its ctid: a row written again moves; DuckDB
    renumbers its rowids as it compacts, so there the content alone is compared)."""
    place = "ctid::text" if _on_postgres(store) else "''"
    return store._query(f"SELECT {', '.join(MATCH_LINK_COLUMNS)}, {place} AS place FROM match_links "  # noqa: SLF001
                        "ORDER BY record_l, record_r, match_weight")


def _write(store, links: pd.DataFrame, relinked: list[int] | None) -> None:  # noqa: ANN001
    import numpy as np

    with store._transaction() as con:  # noqa: SLF001 - the write a change's curation makes
        store._write_match_links(con, links, None if relinked is None else np.array(relinked, dtype="int64"))  # noqa: SLF001


def test_a_change_writes_only_the_links_that_differ(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    _write(store, _links([(1, 2, 3.5, 0.9, '{"mobile": 3.5}'), (2, 3, 2.0, 0.8, '{"name": 2.0}'),
                          (4, 5, 1.5, 0.7, '{"email": 1.5}'), (6, 7, 4.0, 0.95, '{"qq": 4.0}')]), None)
    before = _stored(store).set_index(["record_l", "record_r"])
    # records 1-5 and 8 relinked: (1, 2) comes back as it was, (2, 3) with another weight, (4, 5) is gone,
    # (3, 8) is new; (6, 7) is outside the change
    _write(store, _links([(1, 2, 3.5, 0.9, '{"mobile": 3.5}'), (2, 3, 2.5, 0.85, '{"name": 2.5}'),
                          (3, 8, 1.0, 0.6, None)]), [1, 2, 3, 4, 5, 8])
    after = _stored(store)
    assert after[MATCH_LINK_COLUMNS].astype(object).where(after[MATCH_LINK_COLUMNS].notna(), None).values.tolist() == [
        [1, 2, 3.5, 0.9, '{"mobile": 3.5}'], [2, 3, 2.5, 0.85, '{"name": 2.5}'], [3, 8, 1.0, 0.6, None],
        [6, 7, 4.0, 0.95, '{"qq": 4.0}']]
    if _on_postgres(store):
        place = after.set_index(["record_l", "record_r"])["place"]
        assert place[(1, 2)] == before.at[(1, 2), "place"]  # unchanged: not written again
        assert place[(6, 7)] == before.at[(6, 7), "place"]  # outside the change
        assert place[(2, 3)] != before.at[(2, 3), "place"]  # its weight changed: replaced
    # the same links once more: nothing to write, nothing moves
    _write(store, _links([(1, 2, 3.5, 0.9, '{"mobile": 3.5}'), (2, 3, 2.5, 0.85, '{"name": 2.5}'),
                          (3, 8, 1.0, 0.6, None)]), [1, 2, 3, 8])
    assert _stored(store)["place"].tolist() == after["place"].tolist()
    # a full pass writes every link
    _write(store, _links([(6, 7, 4.0, 0.95, '{"qq": 4.0}')]), None)
    assert _stored(store)[["record_l", "record_r"]].values.tolist() == [[6, 7]]
