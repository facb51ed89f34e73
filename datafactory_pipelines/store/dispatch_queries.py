"""What the notification dispatcher asks the store between passes: is there work, and when is the next.

Read through `store.reading()` (one transaction on a read-write connection, nothing written, no writer
lock): inside `datafactory serve` the event writer keeps a read-write connection open, and DuckDB refuses a
second connection to the same file in one process with another configuration (read-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datafactory_pipelines.store import LeadStore

RECEIVED = "received"  # the events table's status of a stored event not yet applied (events/feed.py)


@dataclass(frozen=True)
class DispatchState:
    """Work waiting for the dispatcher."""

    events_waiting: int  # stored events not applied yet
    first_event: int  # their sequence range (0, 0 when none)
    last_event: int
    unrouted_messages: int  # outbox messages without their deliveries yet
    next_delivery_at: datetime | None  # the earliest moment a delivery to an enabled endpoint is due


def dispatch_state(store: LeadStore, endpoints: list[str], event_limit: int) -> DispatchState:
    """The next batch of waiting events (at most `event_limit`), the messages to route, and when the next
    delivery to one of `endpoints` (configured, enabled) falls due: a pending one at its next attempt, one
    being sent when its lease runs out."""
    with store.reading() as tx:
        con = tx._con  # noqa: SLF001 - this module is the store's own (DuckDB)
        first, last, count = con.execute(
            "SELECT coalesce(min(seq), 0), coalesce(max(seq), 0), count(*) FROM "
            "(SELECT seq FROM events WHERE status = ? ORDER BY seq LIMIT ?) AS waiting", [RECEIVED, event_limit]).fetchall()[0]
        unrouted = con.execute("SELECT count(*) FROM outbox WHERE routed_at IS NULL").fetchall()[0][0]
        next_at = None
        if endpoints:
            marks = ", ".join("?" for _ in endpoints)
            next_at = con.execute(
                f"SELECT min(CASE status WHEN 'pending' THEN next_attempt_at ELSE lease_until END) "
                f"FROM outbox_deliveries WHERE status IN ('pending', 'sending') AND endpoint IN ({marks}) "
                "AND endpoint NOT IN (SELECT endpoint FROM notify_endpoints WHERE disabled_at IS NOT NULL)",
                endpoints).fetchall()[0][0]
    return DispatchState(int(count), int(first), int(last), int(unrouted), next_at)
