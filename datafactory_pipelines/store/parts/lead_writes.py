"""Writing a linkage + survivorship result (LeadChanges): records' leads, the curated leads,
link state, match links, conflicts, shared contacts, and the leads' history, in one transaction."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines.fields import TRACKED_FIELDS
from datafactory_pipelines.store import change_sql, shared_sql
from datafactory_pipelines.store.base import LeadChanges
from datafactory_pipelines.store.schema import (
    CONFLICT_COLUMNS,
    LEAD_COLUMNS,
    MATCH_LINK_COLUMNS,
    SHARED_CONTACT_COLUMNS,
)

if TYPE_CHECKING:  # frames are imported where they are made: opening the store and a one-lead edit need none
    import numpy as np
    import pandas as pd

log = logging.getLogger(__name__)


class LeadWrites:
    path: Path

    def apply_lead_changes(self, changes: LeadChanges) -> None:
        with self._transaction() as con:
            con.register("record_leads_df", changes.record_leads[["record_id", "lead_id"]])
            con.execute("DROP TABLE IF EXISTS record_leads")
            con.execute("CREATE TEMPORARY TABLE record_leads AS SELECT * FROM record_leads_df")
            con.unregister("record_leads_df")
            touches = self._set_record_leads(con)
            con.execute("DROP TABLE record_leads")
            # the writes the leads' history does not read run on the history writer's thread, one after the
            # other on this connection: the SQL ones while the first slices are hashed (DuckDB releases the
            # GIL); the ones scanning pandas frames (they hold the GIL) after the hashing, with the leads
            link_state = partial(self._write_link_state, con, changes)
            linked_frames = partial(self._write_linked_frames, con, changes)
            if len(changes.upserts):
                if not changes.upserts["lead_id"].is_unique:  # the leads table has no key index to refuse it
                    raise ValueError("a change may write each lead once: repeated lead ids in the upserts")
                upserts = changes.upserts.reindex(columns=LEAD_COLUMNS)
                # columns curation does not compute (source attribution, owner …) keep their stored values
                carried = [c for c in LEAD_COLUMNS if c not in changes.upserts.columns]
                # the stored rows, for those and the history: not a provenance the change rewrites (untracked,
                # the biggest column); looked up by the upserts' ids alone (not a conversion of the whole frame)
                read = [c for c in LEAD_COLUMNS if c != "provenance" or c in carried or c in TRACKED_FIELDS]
                con.register("upsert_ids", upserts[["lead_id"]])
                before = con.execute(f"SELECT {', '.join(read)} FROM leads "
                                     "WHERE lead_id IN (SELECT lead_id FROM upsert_ids)").df()
                con.unregister("upsert_ids")
                if carried:
                    stored = before.set_index("lead_id")[carried].reindex(upserts["lead_id"])
                    for column in carried:
                        upserts[column] = stored[column].astype(object).where(stored[column].notna(), None).to_numpy()
                if len(touches):  # source attribution of the leads these records touch (in the history too)
                    touch = touches.set_index("lead_id").reindex(upserts["lead_id"])
                    touched = touch["latest"].notna().to_numpy()
                    unset = upserts["first_source"].fillna("").to_numpy() == ""
                    upserts.loc[touched & unset, "first_source"] = touch["first"].to_numpy()[touched & unset]
                    upserts.loc[touched, "latest_source"] = touch["latest"].to_numpy()[touched]
                    touches = touches[~touches["lead_id"].isin(upserts["lead_id"])]
                self._append_lead_history(con, before, upserts, changes, meanwhile=[link_state],
                                          last=[linked_frames, partial(self._write_leads, con, upserts)])
            else:
                link_state()
                linked_frames()
            if len(touches):
                con.register("source_touches", touches)
                con.execute("UPDATE leads SET first_source = coalesce(nullif(leads.first_source, ''), t.first), "
                            "latest_source = t.latest FROM source_touches t WHERE leads.lead_id = t.lead_id")
                con.unregister("source_touches")


    @staticmethod
    def _set_record_leads(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
        """Each record of the temporary table record_leads (record_id, lead_id) moved to its lead; returns the
        change's source touches (lead_id, first, latest: the sources of records linked for the first time)."""
        con.execute(
            "UPDATE records SET lead_id = record_leads.lead_id FROM record_leads "
            "WHERE records.record_id = record_leads.record_id "
            "AND records.lead_id IS DISTINCT FROM record_leads.lead_id"
        )
        # records linked for the first time are this change's source touches (first/latest source)
        touches = con.execute(
            "SELECT lead_id, arg_min(source, record_id) AS first, arg_max(source, record_id) AS latest "
            "FROM records WHERE first_lead_id IS NULL AND lead_id IS NOT NULL AND coalesce(source, '') <> '' "
            "AND record_id IN (SELECT record_id FROM record_leads) GROUP BY lead_id").df()
        # the lead a record first belonged to: what an unmerge gives back
        con.execute("UPDATE records SET first_lead_id = lead_id WHERE first_lead_id IS NULL AND lead_id IS NOT NULL "
                    "AND record_id IN (SELECT record_id FROM record_leads)")
        return touches

    def _write_link_state(self, con: duckdb.DuckDBPyConnection, changes: LeadChanges) -> None:
        """What a change writes of its linkage in SQL alone: link values and their counters, the queue, the
        model (as `changes` carries them)."""
        if changes.link_values is not None:
            con.execute("DELETE FROM link_values")
            con.register("all_values", changes.link_values)  # pandas or Arrow (a full pass)
            con.execute("INSERT INTO link_values SELECT col, value, record_id, surname FROM all_values")
            con.unregister("all_values")
            self._recount_values(con)
            con.execute(shared_sql.SET_META, ["link_values", changes.link_values_version or ""])
        elif changes.link_values_version and con.execute(  # the saved values are kept: counted once, stamped
                "SELECT count(*) FROM store_meta WHERE key = 'link_values' AND value = ?",
                [changes.link_values_version]).fetchall()[0][0] == 0:
            self._recount_values(con)
            con.execute(shared_sql.SET_META, ["link_values", changes.link_values_version])
        if changes.queue_done is not None:
            con.execute("DELETE FROM link_queue WHERE seq <= ?", [changes.queue_done])
        if changes.link_model is not None:
            con.execute(shared_sql.SET_META, ["link_model", changes.link_model])


    def _write_linked_frames(self, con: duckdb.DuckDBPyConnection, changes: LeadChanges) -> None:
        """What a change writes from its frames besides the leads: match links, conflicts, shared contacts.
        (DuckDB's scan of a pandas frame holds the GIL: a full pass runs these after its hashing.)"""
        if changes.match_links is not None:
            self._write_match_links(con, changes.match_links, changes.relinked)
        if changes.new_conflicts is not None and len(changes.new_conflicts):
            con.register("new_conflicts", changes.new_conflicts[CONFLICT_COLUMNS])
            con.execute("INSERT INTO conflicts SELECT * FROM new_conflicts")
            con.unregister("new_conflicts")
        if changes.shared_contacts is not None:
            if changes.shared_values is None:
                con.execute("DELETE FROM shared_contacts")
            else:
                con.register("shared_values", changes.shared_values[["kind", "value"]])
                con.execute("DELETE FROM shared_contacts WHERE (kind, value) IN (SELECT kind, value FROM shared_values)")
                con.unregister("shared_values")
            con.register("shared_now", changes.shared_contacts[SHARED_CONTACT_COLUMNS])
            con.execute("INSERT INTO shared_contacts SELECT * FROM shared_now")
            con.unregister("shared_now")


    @staticmethod
    def _write_match_links(con: duckdb.DuckDBPyConnection, links: pd.DataFrame, relinked: np.ndarray | None) -> None:
        """The accepted links: all of them after a full pass (`relinked` None); after a change, the stored
        links of its relinked records replaced by `links`, writing only the difference (most of a
        neighbourhood's links come back unchanged: at 1M records a 10k file relinks 61k records whose 74k
        links were deleted and inserted again)."""
        import pandas as pd

        columns = list(MATCH_LINK_COLUMNS)
        if relinked is None:
            con.execute("DELETE FROM match_links")
            fresh, stale = links[columns], None
        else:
            con.register("relinked_ids", pd.DataFrame({"record_id": relinked}, dtype="int64"))
            try:
                stored = con.execute(change_sql.LINKS_OF_RELINKED).df()
            finally:
                con.unregister("relinked_ids")
            types = {"record_l": "int64", "record_r": "int64", "match_weight": "float64",
                     "match_probability": "float64", "contributions": object}
            both = stored[columns].astype(types).merge(links[columns].astype(types), how="outer", on=columns,
                                                       indicator=True)
            stale = both.loc[both["_merge"] == "left_only", ["record_l", "record_r"]].drop_duplicates()
            fresh = both.loc[both["_merge"] == "right_only", columns]
            log.info("match links of %d relinked records: %d stored, %d kept, %d replaced or gone, %d written",
                     len(relinked), len(stored), int((both["_merge"] == "both").sum()), len(stale), len(fresh))
        if stale is not None and len(stale):
            con.register("stale_links", stale.astype("int64"))
            con.execute(change_sql.DELETE_STALE_LINKS)
            con.unregister("stale_links")
        if not len(fresh):
            return
        if hasattr(con, "append_arrow"):  # PostgreSQL: one COPY straight into the table (a full pass: 1.2M rows)
            con.append_arrow("match_links", fresh)
            return
        con.register("new_links", fresh)
        con.execute(f"INSERT INTO match_links ({', '.join(columns)}) SELECT {', '.join(columns)} FROM new_links")
        con.unregister("new_links")

    @staticmethod
    def _write_leads(con: duckdb.DuckDBPyConnection, upserts: pd.DataFrame) -> None:
        """The curated leads written over their stored rows (`upserts`: every lead column)."""
        con.register("lead_upserts", upserts)
        try:
            con.execute("DELETE FROM leads WHERE lead_id IN (SELECT lead_id FROM lead_upserts)")
            con.execute(f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) SELECT * FROM lead_upserts")
        finally:
            con.unregister("lead_upserts")
