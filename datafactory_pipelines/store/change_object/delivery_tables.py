"""The notification delivery queue's tables (outbox routing, deliveries, attempts, endpoints), as methods
of the change object (store/change_object/sql_change.py). notify/delivery.py decides; this writes and
reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from datafactory_pipelines.store import shared_sql

if TYPE_CHECKING:
    import pandas as pd


def _due(endpoints: list[str], now: datetime) -> tuple[str, list]:
    """SQL condition (and its parameters) for deliveries due now at these (configured, enabled) endpoints."""
    if not endpoints:
        return "FALSE", []
    marks = ", ".join("?" for _ in endpoints)
    return (f"endpoint IN ({marks}) AND ((status = 'pending' AND next_attempt_at <= ?) "
            "OR (status = 'sending' AND lease_until <= ?))"), [*endpoints, now, now]


class DeliveryTables:
    _con: duckdb.DuckDBPyConnection

    def unrouted_messages(self) -> list[tuple[int, str]]:
        """(outbox_id, owner) of the messages not yet given their deliveries, in id order."""
        return self._con.execute(shared_sql.UNROUTED_MESSAGES).fetchall()

    def route_messages(self, deliveries: pd.DataFrame, up_to_id: int, now: datetime) -> None:
        """deliveries: outbox_id, endpoint, channel, each pending and due now; messages up to `up_to_id` routed."""
        if len(deliveries):
            self._con.register("new_deliveries", deliveries[["outbox_id", "endpoint", "channel"]])
            try:
                self._con.execute("INSERT INTO outbox_deliveries SELECT outbox_id, endpoint, channel, 'pending', 0, "
                                  "?, NULL, NULL, NULL, ?, NULL FROM new_deliveries", [now, now])
            finally:
                self._con.unregister("new_deliveries")
        self._con.execute(shared_sql.MARK_ROUTED, [now, up_to_id])

    def disabled_endpoints(self) -> set[str]:
        return {row[0] for row in self._con.execute(shared_sql.DISABLED_ENDPOINTS).fetchall()}

    def claim_deliveries(self, endpoints: list[str], now: datetime, limit: int, lease_until: datetime
                         ) -> pd.DataFrame:
        """The deliveries due now at these endpoints (endpoint, attempts and the outbox row), oldest first, at
        most `limit`; each leased until `lease_until` (status 'sending')."""
        where, params = _due(endpoints, now)
        due = self._con.execute(
            f"SELECT d.endpoint, d.attempts, o.* FROM outbox_deliveries d "
            f"JOIN outbox o USING (outbox_id) WHERE {where} ORDER BY d.next_attempt_at, d.outbox_id LIMIT ?",
            [*params, limit]).df()
        if len(due):
            self._con.register("claimed", due[["outbox_id", "endpoint"]])
            try:
                self._con.execute("UPDATE outbox_deliveries SET status = 'sending', lease_until = ?, updated_at = ? "
                                  "FROM claimed c WHERE outbox_deliveries.outbox_id = c.outbox_id "
                                  "AND outbox_deliveries.endpoint = c.endpoint", [lease_until, now])
            finally:
                self._con.unregister("claimed")
        return due

    def due_deliveries(self, endpoints: list[str], now: datetime) -> list[tuple]:
        """(outbox_id, endpoint, attempts, updated_at, next_attempt_at) of the deliveries due now."""
        where, params = _due(endpoints, now)
        return self._con.execute(f"SELECT outbox_id, endpoint, attempts, updated_at, next_attempt_at "
                                 f"FROM outbox_deliveries WHERE {where}", params).fetchall()

    def unrouted_since(self) -> list[tuple]:
        """(outbox_id, created_at) of the messages waiting to be routed."""
        return self._con.execute(shared_sql.UNROUTED_SINCE).fetchall()

    def record_attempts(self, results: pd.DataFrame, moment: datetime) -> None:
        """results: outbox_id, endpoint, attempt, status, next_at, status_code, error, started, duration_ms."""
        self._con.register("attempt_results", results)
        try:
            self._con.execute(
                "UPDATE outbox_deliveries SET status = r.status, attempts = r.attempt, next_attempt_at = r.next_at, "
                "lease_until = NULL, last_status = r.status_code, last_error = r.error, updated_at = ?, "
                "delivered_at = CASE WHEN r.status = 'delivered' THEN ? END FROM attempt_results r "
                "WHERE outbox_deliveries.outbox_id = r.outbox_id AND outbox_deliveries.endpoint = r.endpoint",
                [moment, moment])
            self._con.execute("INSERT INTO delivery_attempts SELECT outbox_id, endpoint, attempt, started, "
                              "status_code, error, duration_ms, next_at FROM attempt_results")
        finally:
            self._con.unregister("attempt_results")

    def release_delivery(self, outbox_id: int, endpoint: str) -> None:
        """A leased delivery back in the queue, untried."""
        self._con.execute(shared_sql.RELEASE_DELIVERY, [outbox_id, endpoint])

    def disable_endpoint(self, endpoint: str, moment: datetime, reason: str) -> None:
        self._con.execute(shared_sql.FORGET_ENDPOINT, [endpoint])
        self._con.execute(shared_sql.DISABLE_ENDPOINT, [endpoint, moment, reason])

    def enable_endpoint(self, endpoint: str) -> bool:
        """Whether the endpoint was disabled; it is not any more."""
        found = self._con.execute(shared_sql.ENDPOINT_KNOWN, [endpoint]).fetchall()[0][0]
        self._con.execute(shared_sql.FORGET_ENDPOINT, [endpoint])
        return bool(found)

    def requeue_deliveries(self, ident: str, now: datetime) -> int:
        """A message's failed or dead deliveries (ident: an outbox id, a message id, or `all-dead`) due now,
        attempts from zero; returns how many."""
        if ident == "all-dead":
            where, params = "status = 'dead'", []
        else:
            found = self._con.execute(shared_sql.OUTBOX_BY_IDENT, [ident, ident]).fetchall()
            if not found:
                raise ValueError(f"no outbox message {ident}")
            where, params = "outbox_id = ? AND status <> 'delivered'", [found[0][0]]
        count = self._con.execute(f"SELECT count(*) FROM outbox_deliveries WHERE {where}", params).fetchall()[0][0]
        self._con.execute(f"UPDATE outbox_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
                          f"lease_until = NULL, updated_at = ? WHERE {where}", [now, now, *params])
        return int(count)

    def queue_overview(self) -> dict:
        """messages, unrouted, by_status, failing, dead, disabled, next_due (notify/delivery.QueueStatus)."""
        con = self._con
        messages, unrouted = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE routed_at IS NULL) FROM outbox").fetchall()[0]
        by_status = dict(con.execute("SELECT status, count(*) FROM outbox_deliveries GROUP BY status").fetchall())
        columns = ("d.outbox_id, o.message_id, o.lead_id, o.owner, d.endpoint, d.attempts, d.last_status, "
                   "d.last_error, d.next_attempt_at, d.updated_at")
        failing = con.execute(f"SELECT {columns} FROM outbox_deliveries d JOIN outbox o USING (outbox_id) "
                              "WHERE d.status IN ('pending', 'sending') AND d.attempts > 0 "
                              "ORDER BY d.next_attempt_at LIMIT 50").df()
        dead = con.execute(f"SELECT {columns} FROM outbox_deliveries d JOIN outbox o USING (outbox_id) "
                           "WHERE d.status = 'dead' ORDER BY d.updated_at DESC LIMIT 50").df()
        disabled = con.execute("SELECT * FROM notify_endpoints WHERE disabled_at IS NOT NULL").df()
        next_due = con.execute("SELECT min(next_attempt_at) FROM outbox_deliveries WHERE status = 'pending'"
                               ).fetchall()[0][0]
        return {"messages": int(messages), "unrouted": int(unrouted),
                "by_status": {k: int(v) for k, v in by_status.items()}, "failing": failing, "dead": dead,
                "disabled": disabled, "next_due": next_due}
