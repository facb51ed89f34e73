"""The change object of both backends: what `store.change(purpose)` hands out, over the change's one
connection and transaction. Typed methods by table family (events, deliveries, tracking links, history,
outbox); never the connection itself (see store/change.py for the interface)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb

from datafactory_pipelines.store import key_fields
from datafactory_pipelines.store.change_object import outbox
from datafactory_pipelines.store.change_object.delivery_tables import DeliveryTables
from datafactory_pipelines.store.change_object.event_tables import EventTables
from datafactory_pipelines.store.change_object.history_table import SqlHistoryTable
from datafactory_pipelines.store.change_object.tracking_tables import TrackingTables
from datafactory_pipelines.store.history_append import HistoryPart, append_history

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


class SqlChange(EventTables, DeliveryTables, TrackingTables):
    """One change's typed access to the store, inside its open transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    # -- history and outbox ----------------------------------------------------------------------
    def append_history(self, changes: Any, action: Any, actor: Any, cause: Any,
                       at: datetime | None = None) -> tuple[int, int]:
        """History rows for `changes` (lead_id, field, old_value, new_value: tuples, a frame or an Arrow
        table), chained after the head, with their outbox messages (store/history_append.py)."""
        return append_history(SqlHistoryTable(self._con), [HistoryPart(changes, action, actor, cause)], at=at)

    def append_outbox(self, history_rows: pd.DataFrame | pa.Table) -> int:
        """Outbox messages for history rows written in this transaction (notify/outbox.py)."""
        return outbox.append_outbox(self._con, history_rows)

    def append_outbox_for_seqs(self, first_seq: int, last_seq: int) -> int:
        return outbox.append_outbox_for_seqs(self._con, first_seq, last_seq)

    def append_notice(self, lead_id: str, text: str, actor: str = "rules", cause: str = "") -> int:
        """A note for the lead's owner in this transaction's message (0 when the lead has no owner)."""
        return outbox.append_notice(self._con, lead_id, text, actor, cause)

    def outbox_changes(self, outbox_rows: pd.DataFrame) -> list[tuple]:
        """(outbox_id, seq, field, old_value, new_value, action, actor, cause) behind these outbox rows."""
        return outbox.outbox_changes(self._con, outbox_rows)


    # -- key fields (store/key_fields.py) ----------------------------------------------------------
    def primary_contact_holder(self, field: str, value: str, other_than: str) -> str | None:
        """The active lead other than `other_than` whose primary `field` (mobile, email) is `value`."""
        return key_fields.holder_of(self._con, field, value, other_than)


class DiagnosticChange(SqlChange):
    """What a store's `transaction()` yields (tests and diagnostics only; library code uses
    `store.change`): the change object, and the connection's own methods (`execute`, `register`…) too."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)
