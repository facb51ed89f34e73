"""How a change's leads are written, where PostgreSQL wants it written differently from DuckDB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from datafactory_pipelines.store.parts.lead_writes import LeadWrites
from datafactory_pipelines.store.schema import LEAD_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from datafactory_pipelines.store.postgres.connection import PgConnection


class PgLeadWrites(LeadWrites):
    @staticmethod
    def _set_record_leads(con: PgConnection) -> pd.DataFrame:
        """DuckDB's three statements as two: the touches read before the move (a record of record_leads ends
        in its lead there), and the lead and the first lead set by one UPDATE. On PostgreSQL an UPDATE writes
        a new version of the whole row and its index entries: a full pass's two UPDATEs of every record took
        twice as long as one."""
        touches = con.execute(
            "SELECT l.lead_id, arg_min(r.source, r.record_id) AS first, arg_max(r.source, r.record_id) AS latest "
            "FROM records r JOIN record_leads l ON l.record_id = r.record_id WHERE r.first_lead_id IS NULL "
            "AND l.lead_id IS NOT NULL AND coalesce(r.source, '') <> '' GROUP BY l.lead_id").df()
        con.execute(
            "UPDATE records SET lead_id = l.lead_id, first_lead_id = coalesce(records.first_lead_id, l.lead_id) "
            "FROM record_leads l WHERE records.record_id = l.record_id "
            "AND (records.lead_id IS DISTINCT FROM l.lead_id OR (records.first_lead_id IS NULL "
            "AND l.lead_id IS NOT NULL))")
        return touches

    @staticmethod
    def _write_leads(con: PgConnection, upserts: pd.DataFrame) -> None:
        """DuckDB's delete-and-insert as one upsert: a stored lead's row is updated where it lies (and, while
        its indexed columns keep their values, without new index entries: leads have fillfactor 90) instead
        of deleted and written again with an entry in every index."""
        columns = ", ".join(LEAD_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in LEAD_COLUMNS if c != "lead_id")
        con.register("lead_upserts", upserts)
        try:
            con.execute(f"INSERT INTO leads ({columns}) SELECT {columns} FROM lead_upserts "
                        f"ON CONFLICT (lead_id) DO UPDATE SET {updates}")
        finally:
            con.unregister("lead_upserts")
