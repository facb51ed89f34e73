"""The lead store interface: what the pipeline needs from any backend (DuckDB file or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from datafactory_pipelines.store.change import StoreChange

if TYPE_CHECKING:  # the interface names frames; importing it (a quick `lead set`) loads no pandas
    import pandas as pd


@dataclass
class ImportMeta:
    import_id: str
    file_name: str
    content_sha256: str
    sheets: list[dict] = field(default_factory=list)
    header_map: dict[str, str] = field(default_factory=dict)
    rows_read: int = 0
    rows_unreachable: int = 0
    blank_rows: int = 0
    imported_by: str = "datafactory"


@dataclass
class LeadChanges:
    """One linkage + survivorship result, written in one transaction."""

    record_leads: pd.DataFrame  # record_id, lead_id for every linked record
    upserts: pd.DataFrame  # lead rows (LEAD_COLUMNS) that are new or changed
    shared_contacts: pd.DataFrame | None = None  # replaces the shared_contacts table when given
    link_model: str | None = None  # the linkage model (JSON) these links were scored with
    match_links: pd.DataFrame | None = None  # record_l, record_r, match_weight, match_probability, contributions
    relinked: list[int] | None = None  # records whose match_links are replaced (None: all)
    new_conflicts: pd.DataFrame | None = None  # conflicts raised by this curation
    action: str = "relink"  # what the history says caused these changes
    actor: str = "datafactory"
    cause: str = ""  # the import id(s), event id or run id behind them
    lead_causes: Any | None = None  # lead_id -> that lead's own cause (a Series), where it is narrower than `cause`
    created: int = 0
    updated: int = 0
    merged: int = 0
    shared_values: pd.DataFrame | None = None  # kind, value: only these shared_contacts rows are replaced
    link_values: pd.DataFrame | Any | None = None  # (pandas or Arrow) replaces link_values when given (a full relink)
    link_values_version: str | None = None  # the linkage config those values were computed with
    queue_done: int | None = None  # link_queue rows up to this seq were linked by this change


class DuplicateImportError(Exception):
    """The same file content was imported before."""

    def __init__(self, import_id: str) -> None:
        self.import_id = import_id
        super().__init__(f"this content was already imported as {import_id}")


class LeadStore(Protocol):
    @property
    def location(self) -> Any:
        """What `open_store` opens this store by: a DuckDB file's path, or a PostgreSQL URL."""
        ...

    def exclusive(self, purpose: str, atomic: bool = False) -> AbstractContextManager[None]:
        """The change-level writer lock: everything a change reads and writes (save, link, curate,
        history) happens while no other writer runs; re-entrant within a process; waits, saying so.
        `atomic`: the whole change is one transaction. DuckDB: a lock file beside the store;
        PostgreSQL: an advisory lock."""
        ...

    def find_import(self, content_sha256: str) -> str | None: ...

    def save_import(self, meta: ImportMeta, records: pd.DataFrame | Any, link_values: pd.DataFrame | Any | None = None,
                    values_version: str | None = None) -> int: ...  # pandas or Arrow tables

    def saved_link_values(self) -> str: ...  # the config version all saved link values come from ('mixed')

    def bulk_writes(self) -> AbstractContextManager[None]:
        """Many writes in a row over one connection, each transaction still its own."""
        ...

    def settle_after_full_pass(self) -> None:
        """After a committed change that rewrote most of the store (a full or bulk pass): what the database
        needs before the next change runs (PostgreSQL: VACUUM (ANALYZE) of the rewritten tables)."""
        ...

    def memory_budget(self, limit: str) -> AbstractContextManager[None]:
        """Within an atomic change, the database's buffer memory capped at `limit` while the caller holds
        big frames in Python (DuckDB: `memory_limit`, which evicts cached blocks; PostgreSQL: nothing)."""
        ...

    # -- the per-change path: everything below is looked up by key, never by reading the base --
    def link_queue(self) -> pd.DataFrame: ...  # seq, record_id, lead_id, change (added|removed|lead), col, value

    def value_stats(self, keys: pd.DataFrame) -> pd.DataFrame: ...  # (col, value) -> n_records, n_names

    # (col, value) the change adds/removes -> n_added, n_removed, n_records, n_names, appeared, vanished
    def change_counts(self, added: list[int], removed: pd.DataFrame) -> pd.DataFrame: ...

    def neighbourhood_stats(self, record_ids: list[int]) -> pd.DataFrame: ...  # counters of the records' values

    def records_sharing(self, keys: pd.DataFrame) -> pd.DataFrame: ...  # record_id, lead_id carrying any key

    def record_leads_of(self, record_ids: list[int], lead_ids: list[str]) -> pd.DataFrame: ...  # record_id, lead_id

    def linkage_records_of(self, record_ids: list[int], lead_ids: list[str],
                           columns: list[str] | None = None) -> pd.DataFrame: ...

    def links_touching(self, record_ids: list[int]) -> pd.DataFrame: ...  # stored accepted links: id_l, id_r

    def leads_by_id(self, lead_ids: list[str], columns: list[str] | None = None) -> pd.DataFrame: ...

    def leads_carrying_mobiles(self, mobiles: list[str]) -> list[str]: ...

    def golden_records(self, scope: pd.DataFrame, switchboards: Collection[str]) -> pd.DataFrame:
        """Survivorship's golden values (survivorship_sql.golden_sql) of the leads in scope (record_id, lead_id)."""
        ...

    def overrides_for(self, lead_ids: list[str]) -> pd.DataFrame: ...

    def conflicts_for(self, lead_ids: list[str], status: str | None = "open") -> pd.DataFrame: ...

    def change_path_state(self) -> dict[str, int]: ...  # active_records, max_lead_number, max_conflict_id, ...

    def active_lead_count(self) -> int: ...  # leads with status 'active' (change_path_state's active_leads alone)

    def records_for_linkage(self, columns: list[str] | None = None) -> pd.DataFrame: ...

    # -- the full pass: the base read once, in columns --
    def active_records_arrow(self, columns: list[str]) -> Any: ...  # a pyarrow.Table, record id order

    def kept_apart_pairs(self, lead_ids: list[str] | None = None) -> pd.DataFrame: ...  # id_l, id_r: records
    # of leads an operator split apart (all, or of the splits within these leads)

    def apply_lead_changes(self, changes: LeadChanges) -> None: ...

    def leads(self, include_retired: bool = False) -> pd.DataFrame: ...

    def links(self) -> pd.DataFrame: ...

    def imports(self) -> pd.DataFrame: ...

    def import_records(self, import_id: str) -> pd.DataFrame: ...

    def counts(self) -> dict[str, int]: ...

    def quarantine(self, import_id: str | None = None) -> pd.DataFrame: ...

    def shared_contacts(self) -> pd.DataFrame: ...

    def link_model(self) -> str | None: ...

    def match_links(self, record_id: int) -> pd.DataFrame: ...

    def accepted_links(self) -> pd.DataFrame: ...

    def lead_records(self, lead_id: str) -> pd.DataFrame: ...

    # one lead at a time, as plain rows (no frames): what `lead show` and `lead set` read and write
    def lead_rows(self, lead_ids: list[str]) -> list[dict]: ...

    def lead_record_rows(self, lead_id: str, columns: list[str]) -> list[dict]: ...

    def active_among(self, lead_ids: list[str]) -> set[str]: ...

    def leads_around(self, lead_ids: list[str]) -> pd.DataFrame: ...  # and the leads sharing their mobiles

    def override_rows(self, lead_id: str) -> list[dict]: ...

    def edit_fields(self, edits: list[tuple[str, str, str]], by: str, note: str, origin: str,
                    moment: datetime) -> int: ...  # (lead_id, field, value): overrides, leads, history, outbox

    def conflicts_by_id(self, conflict_ids: list[int]) -> pd.DataFrame: ...

    def import_row(self, import_id: str) -> dict: ...

    def quarantine_count(self) -> int: ...

    def revive_merges(self, merges: list[tuple[str, str]]) -> int: ...  # (merged, survivor) pairs

    def leads_merged_into(self, lead_id: str) -> list[str]: ...

    def conflicts_in_group(self, group_id: str, status: str = "open") -> pd.DataFrame: ...

    def history(self, lead_id: str | None = None) -> pd.DataFrame: ...

    def history_after(self, seq: int) -> pd.DataFrame: ...

    def history_head_seq(self) -> int: ...  # the last history row's seq (0 when there is none)

    def retire_import(self, import_id: str, by: str) -> int: ...

    def leads_touched_by_import(self, import_id: str) -> list[str]: ...

    def history_of_leads(self, lead_ids: list[str]) -> pd.DataFrame: ...

    def records_of_leads(self, lead_ids: list[str]) -> pd.DataFrame: ...

    def close_conflicts(self, closed: pd.DataFrame, by: str, cause: str) -> None: ...

    def add_conflicts(self, conflicts: pd.DataFrame) -> None: ...

    def lead_splits(self) -> pd.DataFrame: ...

    # -- possible matches (linkage/review.py; store/review_sql.py) --
    def save_match_reviews(self, reviews: pd.DataFrame) -> int: ...  # the band's pairs of a change

    def open_match_reviews(self) -> pd.DataFrame: ...  # undecided band pairs between two active leads

    def match_review_count(self) -> int: ...

    def match_decisions(self) -> pd.DataFrame: ...  # the latest decision per pair

    def band_leads(self) -> list[str]: ...

    def record_match_decisions(self, decisions: pd.DataFrame, by: str, note: str, recalibration: str | None,
                               requeue: list[str]) -> int: ...

    def review_recalibration(self) -> str | None: ...

    def kept_together_pairs(self, lead_ids: list[str] | None = None) -> pd.DataFrame: ...

    def decided_apart_pairs(self, lead_ids: list[str] | None = None) -> pd.DataFrame: ...

    def split_lead(self, survivor: str, merged: str, by: str) -> int: ...

    def table_names(self) -> list[str]: ...

    def table_snapshot(self, tables: list[str]) -> dict[str, pd.DataFrame]: ...

    def load_snapshot(self, tables: dict[str, pd.DataFrame]) -> None: ...

    def table_columns(self) -> dict[str, list[str]]: ...

    def returning_leads(self, record_ids: list[int]) -> dict[int, str]: ...

    def imports_waiting_to_link(self) -> list[str]: ...

    def record_restore(self, restore_id: str, kind: str, target: str, by: str, imports_undone: list[str]) -> None: ...

    def restore_row(self, restore_id: str) -> dict | None: ...

    def restores(self) -> pd.DataFrame: ...

    def mark_restore_undone(self, restore_id: str, by: str) -> None: ...

    def drop_restore_overrides(self, restore_id: str) -> list[str]: ...

    def revive_import(self, import_id: str, link_values: pd.DataFrame) -> int: ...

    def table_row_counts(self) -> dict[str, int]: ...

    def overrides(self) -> pd.DataFrame: ...

    def conflicts(self, status: str | None = "open") -> pd.DataFrame: ...

    def apply_decisions(self, overrides: pd.DataFrame, decided: pd.DataFrame, lead_updates: pd.DataFrame) -> None: ...

    # -- changes through the typed change object (store/change.py); never a connection --
    def change(self, purpose: str) -> AbstractContextManager[StoreChange]:
        """A whole change: alone (the writer lock, as `exclusive(purpose, atomic=True)`) and in one
        transaction; everything written through the object it yields happens, or none of it does."""
        ...

    def reading(self) -> AbstractContextManager[StoreChange]:
        """Reads that must agree with each other (one transaction), without taking the writer lock."""
        ...

    def batched_writer(self, purpose: str, idle_seconds: float, yield_seconds: float) -> BatchedChanges:
        """A long-lived writer (the event server's): each submitted function of the change object runs in a
        transaction shared with the items submitted together."""
        ...

    def events_waiting_after(self, after_seq: int, status: str, limit: int) -> list[int]: ...

    def event_counts(self) -> pd.DataFrame: ...  # type, status, n

    def transaction(self) -> AbstractContextManager[Any]:
        """Tests and diagnostics only (library code uses `change`): one transaction, as an object that also
        runs the backend's SQL."""
        ...


class BatchedChanges(Protocol):
    commits: int
    yields: int

    def submit(self, work: Callable[[StoreChange], Any]) -> Future: ...

    def close(self) -> None: ...
