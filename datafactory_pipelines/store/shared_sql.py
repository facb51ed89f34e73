"""SQL text every backend runs as it is (standard SQL): one copy, read by store/duckdb/ and a second backend.

Dialect-specific statements (DuckDB's `register`ed frames, `QUALIFY`, `INSERT OR REPLACE`, `arg_min`…) stay in
the backend's own package; a statement moves here once it reads the same in every dialect.
"""

from __future__ import annotations

from datafactory_pipelines.history import HISTORY_COLUMNS

# -- history (store/history_append.py is the one writer) -------------------------------------------------
HISTORY_HEAD = "SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1"
INSERT_HISTORY_COLUMNS = f"INSERT INTO history ({', '.join(HISTORY_COLUMNS)})"

# -- events ----------------------------------------------------------------------------------------------
EVENT_COLUMNS = ("seq, key_hash, source, event_id, type, subject, event_time, data, extensions, received_at, via, "
                 "status")
NEXT_EVENT_SEQ = "SELECT coalesce(max(seq), 0) + 1 FROM events"
WAITING_EVENTS = "SELECT * FROM events WHERE seq >= ? AND seq <= ? AND status = ? ORDER BY seq"
EVENTS_AFTER = "SELECT seq FROM events WHERE seq > ? AND status = ? ORDER BY seq LIMIT ?"
EVENT_COUNTS = "SELECT type, status, count(*) AS n FROM events GROUP BY type, status ORDER BY type, status"
NEXT_CONFLICT_ID = "SELECT coalesce(max(conflict_id), 0) + 1 FROM conflicts"

# -- tracking links --------------------------------------------------------------------------------------
ACTIVE_LEAD = "SELECT 1 FROM leads WHERE lead_id = ? AND status = 'active'"
META_VALUE = "SELECT value FROM store_meta WHERE key = ?"
INSERT_META = "INSERT INTO store_meta VALUES (?, ?)"
#: a store_meta value set (replacing the one before): standard ON CONFLICT, which DuckDB and PostgreSQL share
SET_META = "INSERT INTO store_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
INSERT_TRACKING_LINK = "INSERT INTO tracking_links VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
TRACKING_LINK = ("SELECT target, channel, utm_source, utm_medium, utm_campaign, lead_id FROM tracking_links "
                 "WHERE token = ?")

# -- notification deliveries -----------------------------------------------------------------------------
UNROUTED_MESSAGES = "SELECT outbox_id, owner FROM outbox WHERE routed_at IS NULL ORDER BY outbox_id"
UNROUTED_SINCE = "SELECT outbox_id, created_at FROM outbox WHERE routed_at IS NULL"
MARK_ROUTED = "UPDATE outbox SET routed_at = ? WHERE routed_at IS NULL AND outbox_id <= ?"
DISABLED_ENDPOINTS = "SELECT endpoint FROM notify_endpoints WHERE disabled_at IS NOT NULL"
RELEASE_DELIVERY = ("UPDATE outbox_deliveries SET status = 'pending', lease_until = NULL "
                    "WHERE outbox_id = ? AND endpoint = ? AND status = 'sending'")
FORGET_ENDPOINT = "DELETE FROM notify_endpoints WHERE endpoint = ?"
DISABLE_ENDPOINT = "INSERT INTO notify_endpoints VALUES (?, ?, ?)"
ENDPOINT_KNOWN = "SELECT count(*) FROM notify_endpoints WHERE endpoint = ?"
OUTBOX_BY_IDENT = "SELECT outbox_id FROM outbox WHERE message_id = ? OR CAST(outbox_id AS VARCHAR) = ?"
