"""Tracking links for third-party channels: /t/<code> records a click and redirects to a stored target.

A code is an opaque random token (the key of a `tracking_links` row) followed by its HMAC-SHA256
signature, so an altered or guessed code is refused before the store is read. The target comes only
from the stored row, never from the request (no open redirect), and a link can only be made to a host
on the allowlist `DATAFACTORY_LINK_HOSTS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from datafactory_pipelines.events.feed import insert_events
from datafactory_pipelines.events.types import EventError, validate_event
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.change import StoreChange

TOKEN_CHARS = 12  # 9 random bytes
SIGNATURE_CHARS = 16  # 12 bytes of the HMAC
CLICK_SOURCE = "datafactory/links"
DEFAULT_BASE_URL = "http://127.0.0.1:8787"


class LinkError(ValueError):
    """A link that cannot be made."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def link_secret(tx: StoreChange) -> bytes:
    """DATAFACTORY_LINK_SECRET, else a secret made once and kept in the store."""
    configured = os.environ.get("DATAFACTORY_LINK_SECRET", "")
    if configured:
        return configured.encode("utf-8")
    kept = tx.meta_value("link_secret")
    if kept:
        return kept.encode("ascii")
    made = secrets.token_hex(32)
    tx.add_meta_value("link_secret", made)
    return made.encode("ascii")


def sign(token: str, secret: bytes) -> str:
    return token + _b64(hmac.new(secret, token.encode("ascii"), hashlib.sha256).digest())[:SIGNATURE_CHARS]


def verified_token(code: str, secret: bytes) -> str | None:
    """The token of a genuine code; None for anything altered or malformed."""
    if len(code) != TOKEN_CHARS + SIGNATURE_CHARS or not code.isascii():
        return None
    token = code[:TOKEN_CHARS]
    return token if hmac.compare_digest(sign(token, secret), code) else None


def allowed_hosts() -> list[str]:
    return [h.strip().lower() for h in os.environ.get("DATAFACTORY_LINK_HOSTS", "").split(",") if h.strip()]


def host_allowed(host: str, allowlist: list[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowlist:
        if entry.startswith("*."):  # *.example.com: any subdomain
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def with_utm(target: str, utm: dict[str, str]) -> str:
    parts = urlsplit(target)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    query += [(k, v) for k, v in utm.items() if v and k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass
class TrackingLink:
    code: str
    url: str
    target: str


def make_link(store: LeadStore, channel: str, target: str, lead_id: str | None = None, utm_source: str = "",
              utm_medium: str = "", utm_campaign: str = "", base_url: str | None = None,
              created_by: str = "cli") -> TrackingLink:
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LinkError(f"target {target!r} is not an http(s) URL")
    hosts = allowed_hosts()
    if not host_allowed(parts.hostname, hosts):
        raise LinkError(f"target host {parts.hostname!r} is not on the allowlist DATAFACTORY_LINK_HOSTS "
                        f"({', '.join(hosts) or 'empty'})")
    if not channel.strip():
        raise LinkError("a link needs a channel")
    utm = {"utm_source": utm_source, "utm_medium": utm_medium, "utm_campaign": utm_campaign}
    final = with_utm(target, utm)
    with store.change(f"make a tracking link for {channel}") as tx:
        if lead_id and not tx.lead_is_active(lead_id):
            raise LinkError(f"no active lead {lead_id}")
        secret = link_secret(tx)
        token = _b64(secrets.token_bytes(9))
        tx.add_tracking_link((token, final, channel.strip(), utm_source or None, utm_medium or None,
                              utm_campaign or None, lead_id or None, datetime.now(timezone.utc).replace(tzinfo=None),
                              created_by))
    code = sign(token, secret)
    base = (base_url or os.environ.get("DATAFACTORY_PUBLIC_URL") or DEFAULT_BASE_URL).rstrip("/")
    return TrackingLink(code, f"{base}/t/{code}", final)


def link_target(tx: StoreChange, code: str) -> str | None:
    """The stored target of a genuine code, recording nothing (what a HEAD request is answered with: link
    checkers and chat previews are not visitors); None for an unknown or altered code."""
    token = verified_token(code, link_secret(tx))
    if token is None:
        return None
    row = tx.tracking_link(token)
    return row[0] if row else None


def record_click(tx: StoreChange, code: str, user_agent: str = "", ip: str = "") -> str | None:
    """Inside a transaction: the stored target of a genuine code, after storing its `link.clicked` event;
    None for an unknown or altered code (nothing stored)."""
    token = verified_token(code, link_secret(tx))
    if token is None:
        return None
    row = tx.tracking_link(token)
    if row is None:
        return None
    target, channel, utm_source, utm_medium, utm_campaign, lead_id = row
    keep_ip = os.environ.get("DATAFACTORY_LINK_STORE_IP", "").lower() in ("1", "true", "yes")
    data = {"code": code, "channel": channel, "utm_source": utm_source, "utm_medium": utm_medium,
            "utm_campaign": utm_campaign, "lead_id": lead_id, "target_host": urlsplit(target).hostname,
            "user_agent": user_agent[:500] or None, "ip": ip if keep_ip and ip else None,
            "clicked_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    event = validate_event({"id": uuid.uuid4().hex, "source": CLICK_SOURCE, "specversion": "1.0",
                            "type": "link.clicked", "subject": lead_id,
                            "data": {k: v for k, v in data.items() if v is not None}})
    if isinstance(event, EventError):  # our own event: a bug, not the visitor's fault
        raise RuntimeError(event.describe())
    insert_events(tx, [event], via="link")
    return target
