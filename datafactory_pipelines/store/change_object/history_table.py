"""The table half of the one history writer (store/history_append.py): read the head, insert the rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines.history import HISTORY_COLUMNS
from datafactory_pipelines.store import shared_sql
from datafactory_pipelines.store.change_object import outbox

if TYPE_CHECKING:
    import pyarrow as pa


class SqlHistoryTable:
    """`history_append.HistoryTable` over a connection inside its open transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def history_head(self) -> tuple[int, str] | None:
        head = self._con.execute(shared_sql.HISTORY_HEAD).fetchall()
        return (int(head[0][0]), str(head[0][1])) if head else None

    def insert_history(self, rows: list[tuple] | pa.Table) -> None:
        con = self._con
        if isinstance(rows, list):  # a few rows (an operator's edit): one statement, no frames
            con.execute(f"{shared_sql.INSERT_HISTORY_COLUMNS} VALUES "
                        + ", ".join([f"({', '.join('?' * len(HISTORY_COLUMNS))})"] * len(rows)),
                        [value for row in rows for value in row])
            first, last = rows[0][0], rows[-1][0]
        elif hasattr(con, "append_arrow"):  # PostgreSQL: one COPY straight into the history
            con.append_arrow("history", rows)
            seqs = rows.column("seq")
            first, last = seqs[0].as_py(), seqs[len(seqs) - 1].as_py()
        else:
            import pyarrow as pa

            # as a stream: DuckDB reads it once and keeps no reference to the table (a registered table stayed
            # alive after the insert: at 4M rows, hundreds of MB)
            con.register("history_rows", pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()))
            try:
                con.execute(f"{shared_sql.INSERT_HISTORY_COLUMNS} SELECT * FROM history_rows")
            finally:
                con.unregister("history_rows")
            seqs = rows.column("seq")
            first, last = seqs[0].as_py(), seqs[len(seqs) - 1].as_py()
        # the lead's owner hears of it, in this same transaction (notify/outbox.py)
        outbox.append_outbox_for_seqs(con, first, last)
