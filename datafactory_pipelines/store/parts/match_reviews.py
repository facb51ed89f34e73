"""The store's side of possible matches (linkage/review.py): the middle band's pairs, people's
decisions, and what the decisions bind."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from datafactory_pipelines.store import shared_sql
from datafactory_pipelines.store.parts.change_path import _lead_ids

if TYPE_CHECKING:
    import pandas as pd

RECALIBRATION_KEY = "match_review_recalibration"

#: the latest decision per pair (a person may change their mind; every answer is kept)
_LATEST_DECISIONS = """(SELECT id_l, id_r, decision, decided_by, decided_at, note, pattern, match_weight, contributions
    FROM (SELECT *, row_number() OVER (PARTITION BY id_l, id_r ORDER BY decided_at DESC, decision) AS latest
          FROM match_decisions) ranked WHERE latest = 1)"""

#: pairs of the band whose two records are active and in active leads (one or two), and not decided
_OPEN = """
    SELECT m.*, a.lead_id AS lead_l, b.lead_id AS lead_r, a.lead_id = b.lead_id AS same_lead
    FROM match_reviews m
    JOIN records a ON a.record_id = m.id_l AND a.retired_by IS NULL AND a.lead_id IS NOT NULL
    JOIN records b ON b.record_id = m.id_r AND b.retired_by IS NULL AND b.lead_id IS NOT NULL
    JOIN leads la ON la.lead_id = a.lead_id AND la.status = 'active'
    JOIN leads lb ON lb.lead_id = b.lead_id AND lb.status = 'active'
    WHERE NOT EXISTS (SELECT 1 FROM match_decisions d WHERE d.id_l = m.id_l AND d.id_r = m.id_r)"""


class MatchReviews:
    """Possible matches in the store (mixed into both stores; uses their connection helpers)."""

    def save_match_reviews(self, reviews: pd.DataFrame) -> int:
        """The band's pairs of a change, with their latest score (a pair scored again is replaced)."""
        if reviews.empty:
            return 0
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._transaction() as con:
            con.register("band_df", reviews[["id_l", "id_r", "match_weight", "match_probability", "pattern",
                                             "contributions"]])
            con.execute("DELETE FROM match_reviews WHERE (id_l, id_r) IN (SELECT id_l, id_r FROM band_df)")
            con.execute("INSERT INTO match_reviews SELECT id_l, id_r, match_weight, match_probability, pattern, "
                        "contributions, ? FROM band_df", [now])
            con.unregister("band_df")
        return len(reviews)

    def open_match_reviews(self) -> pd.DataFrame:
        """Every undecided pair of the band between active records of active leads: id_l, id_r, match_weight,
        match_probability, pattern, contributions, scored_at, lead_l, lead_r, same_lead (linked now)."""
        return self._query(_OPEN + " ORDER BY m.id_l, m.id_r")

    def match_review_count(self) -> int:
        return int(self._query(f"SELECT count(*) AS n FROM ({_OPEN}) AS open_pairs").iloc[0, 0])

    def match_decisions(self) -> pd.DataFrame:
        """The latest decision per pair, with the score the pair had when it was decided."""
        return self._query(f"SELECT * FROM {_LATEST_DECISIONS} AS latest ORDER BY decided_at, id_l, id_r")

    def band_leads(self) -> list[str]:
        """The active leads of every pair the band ever held: what a new recalibration may decide again."""
        frame = self._query("""
            SELECT DISTINCT r.lead_id FROM match_reviews m
            JOIN records r ON r.record_id IN (m.id_l, m.id_r) AND r.retired_by IS NULL AND r.lead_id IS NOT NULL""")
        return sorted(frame["lead_id"].astype(str))

    def record_match_decisions(self, decisions: pd.DataFrame, by: str, note: str, recalibration: str | None,
                               requeue: list[str]) -> int:
        """People's answers (id_l, id_r, decision, pattern, match_weight, contributions), kept forever, in one
        transaction with: a history row on each lead, the two leads queued to be linked again, the new
        recalibration and (`requeue`) the leads whose band pairs it may decide differently."""
        if decisions.empty:
            return 0
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._transaction() as con:
            con.register("decided_df", decisions[["id_l", "id_r", "decision", "pattern", "match_weight",
                                                  "contributions"]])
            con.execute("INSERT INTO match_decisions SELECT id_l, id_r, decision, ?, ?, ?, pattern, match_weight, "
                        "contributions FROM decided_df", [by, now, note])
            leads = con.execute("""
                SELECT d.id_l, d.id_r, d.decision, a.lead_id AS lead_l, b.lead_id AS lead_r FROM decided_df d
                JOIN records a ON a.record_id = d.id_l JOIN records b ON b.record_id = d.id_r""").fetchall()
            con.unregister("decided_df")
            # a merge joins the two leads as they stand: each of their records kept with the pair's first
            con.execute("""INSERT INTO kept_together
                SELECT DISTINCT d.id_l, r.record_id, ? FROM match_decisions d
                JOIN records a ON a.record_id = d.id_l JOIN records b ON b.record_id = d.id_r
                JOIN records r ON r.lead_id IN (a.lead_id, b.lead_id) AND r.retired_by IS NULL
                WHERE d.decided_at = ? AND d.decision = 'merge' AND r.record_id <> d.id_l""", [now, now])
            changes = []
            for id_l, id_r, decision, lead_l, lead_r in leads:
                said = "same person" if decision == "merge" else "different people"
                for lead, other, own, theirs in ((lead_l, lead_r, id_l, id_r), (lead_r, lead_l, id_r, id_l)):
                    if lead:
                        changes.append((lead, "match_review", "", f"{said}: record {own} ~ record {theirs} "
                                        f"({other or 'no lead'})"))
            self._append_history_rows(con, changes, "review", by, note or "match review")
            if recalibration is not None:
                con.execute(shared_sql.SET_META, [RECALIBRATION_KEY, recalibration])
            queued = {lead for row in leads for lead in row[3:] if lead} | set(requeue)
            self._queue_leads(con, sorted(queued))
        return len(decisions)

    def review_recalibration(self) -> str | None:
        frame = self._query("SELECT value FROM store_meta WHERE key = ?", [RECALIBRATION_KEY])
        return None if frame.empty else str(frame.iloc[0, 0])

    def kept_together_pairs(self, lead_ids: list[str] | None = None) -> pd.DataFrame:
        """id_l, id_r: active records a person said are one person, with the records of the two leads they
        joined then (a change's leads only, when given); a pair decided apart since is left out."""
        import pandas as pd

        decided = self._decided_pairs("merge", lead_ids)
        sql = f"""SELECT k.id_l, k.id_r FROM kept_together k
            JOIN records a ON a.record_id = k.id_l AND a.retired_by IS NULL
            JOIN records b ON b.record_id = k.id_r AND b.retired_by IS NULL
            WHERE NOT EXISTS (SELECT 1 FROM {_LATEST_DECISIONS} d WHERE d.decision = 'apart'
                              AND d.id_l = least(k.id_l, k.id_r) AND d.id_r = greatest(k.id_l, k.id_r))"""
        joined = self._of_leads(sql, lead_ids)
        return pd.concat([decided, joined], ignore_index=True).drop_duplicates(ignore_index=True)

    def decided_apart_pairs(self, lead_ids: list[str] | None = None) -> pd.DataFrame:
        """id_l, id_r: active records a person said are different people (a change's leads only, when given)."""
        return self._decided_pairs("apart", lead_ids)

    def _decided_pairs(self, decision: str, lead_ids: list[str] | None) -> pd.DataFrame:
        sql = f"""SELECT d.id_l, d.id_r FROM {_LATEST_DECISIONS} d
            JOIN records a ON a.record_id = d.id_l AND a.retired_by IS NULL
            JOIN records b ON b.record_id = d.id_r AND b.retired_by IS NULL
            WHERE d.decision = ?"""
        return self._of_leads(sql, lead_ids, [decision])

    def _of_leads(self, sql: str, lead_ids: list[str] | None, params: list | None = None) -> pd.DataFrame:
        """A query of record pairs (its records aliased a and b), all of them or those touching these leads."""
        if lead_ids is None:
            return self._query(sql, params)
        return self._query_with(sql + " AND (a.lead_id IN (SELECT lead_id FROM wanted_leads) "
                                      "OR b.lead_id IN (SELECT lead_id FROM wanted_leads))",
                                {"wanted_leads": _lead_ids(lead_ids)}, params)
