"""The history writers of a lead store, one part shared by both backends: an operator's few rows, decisions'
frames, and every import's leads in slices. All of them end in store/history_append.py, the one place the
chain is appended."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines.history import field_changes_table
from datafactory_pipelines.store.base import LeadChanges
from datafactory_pipelines.store.change_object.history_table import SqlHistoryTable
from datafactory_pipelines.store.change_object.sql_change import SqlChange
from datafactory_pipelines.store.history_append import HistoryPart, append_history

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import pandas as pd
    import pyarrow as pa

#: leads whose history is made and appended at once (bounds a full pass's memory; the rows are the same)
HISTORY_SLICE_LEADS = 20_000


def _connection(con: duckdb.DuckDBPyConnection | SqlChange) -> duckdb.DuckDBPyConnection:
    """The connection under a change object (tests hand `transaction()`'s object to the history writers)."""
    return con._con if isinstance(con, SqlChange) else con  # noqa: SLF001 - the change is the store's own


class HistoryWriters:
    @staticmethod
    def _append_history_rows(con: duckdb.DuckDBPyConnection | SqlChange,
                             changes: list[tuple[str, str, str, str]], action: str, actor: str, cause: str) -> None:
        """`_append_history` for a few (lead_id, field, old, new) changes, without frames."""
        append_history(SqlHistoryTable(_connection(con)), [HistoryPart(list(changes), action, actor, cause)])

    def _append_lead_history(self, con: duckdb.DuckDBPyConnection, before: pd.DataFrame, upserts: pd.DataFrame,
                             changes: LeadChanges, meanwhile: Sequence[Callable[[], None]] = (),
                             last: Sequence[Callable[[], None]] = ()) -> None:
        """The history of curated leads, a slice of leads at a time (in lead order, as one append would
        write it): a full pass over 400k new leads writes millions of rows, and memory must not grow with them.

        Each slice's rows are made in Arrow (`history.field_changes_table`, `history.chain_table`) while
        DuckDB inserts the slice before (it releases the GIL): the chain, sequential by nature, and the
        insert overlap on two cores. `meanwhile`: the change's other writes (on `con`, in order), run on the
        writer's thread before the first slice is inserted, while the first slices are hashed; `last`: the ones
        run after the last slice, queued once every slice is hashed."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        order = np.argsort(upserts["lead_id"].to_numpy(), kind="stable")  # lead order
        lead_ids = upserts["lead_id"].to_numpy()[order]
        before_by_lead = before.set_index("lead_id")
        is_new = ~pd.Index(lead_ids).isin(before_by_lead.index)
        def slices() -> Iterator[HistoryPart]:  # made one at a time, while the slice before is inserted
            for start in range(0, len(lead_ids), HISTORY_SLICE_LEADS):
                part = upserts.iloc[order[start:start + HISTORY_SLICE_LEADS]]
                part_ids = lead_ids[start:start + HISTORY_SLICE_LEADS]
                part_new = is_new[start:start + HISTORY_SLICE_LEADS]
                diffs = field_changes_table(before_by_lead.loc[part_ids[~part_new]].reset_index(), part)
                if not diffs.num_rows:
                    continue
                # per lead of the slice, then per row: which lead each row is about (the slice is in lead order)
                row_lead = pc.index_in(diffs["lead_id"], value_set=pa.array(part_ids, pa.string()))
                new_lead = pa.array(part_new, pa.bool_()).take(row_lead)
                merged = pc.and_(pc.equal(diffs["field"], "status"), pc.equal(diffs["new_value"], "merged"))
                action = pc.if_else(merged, "merge", pc.if_else(new_lead, "create", changes.action))
                if changes.lead_causes is None:
                    cause: pa.Array | str = changes.cause
                else:
                    per_lead = changes.lead_causes.reindex(part_ids).fillna(changes.cause).astype(str).to_numpy()
                    cause = pa.array(per_lead, pa.string()).take(row_lead)
                yield HistoryPart(diffs, action, changes.actor, cause)

        append_history(SqlHistoryTable(con), slices(), meanwhile=meanwhile, last=last)

    @staticmethod
    def _append_history(con: duckdb.DuckDBPyConnection | SqlChange, diffs: pd.DataFrame,
                        action: pd.Series | str, actor: str, cause: pd.Series | str) -> None:
        """History rows for `diffs` (lead_id, field, old_value, new_value), chained after the last row."""
        append_history(SqlHistoryTable(_connection(con)), [HistoryPart(diffs, action, actor, cause)])
