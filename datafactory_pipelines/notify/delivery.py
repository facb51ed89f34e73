"""Delivering the outbox: Standard Webhooks POSTs and SMTP mail, with retries, 410 and dead letters.

One pass (`deliver_due`):
1. route: each new outbox message gets one delivery per endpoint that serves its owner (notify.yaml);
2. claim: deliveries that are due are leased in one short transaction (a crashed pass's lease runs out
   and the delivery is due again, with the same message id);
3. send, outside any transaction: a webhook POST signed with the endpoint's secret, or a mail;
4. record each result in its own transaction: delivered; or failed and due again after the next delay
   of the schedule (with jitter, never before a `Retry-After`); dead after the last attempt; a 410
   disables the endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formatdate, parsedate_to_datetime

import pandas as pd

from datafactory_pipelines.notify.config import EMAIL_ENDPOINT, NotifyConfig, Smtp, Webhook
from datafactory_pipelines.notify.outbox import build_messages, message_for
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.change import StoreChange

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 24 * 3600.0
USER_AGENT = "datafactory-webhooks/1"


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


# -- Standard Webhooks -----------------------------------------------------------------------------
def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` (https://www.standardwebhooks.com)."""
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def webhook_body(payload: dict, trusted: bool) -> bytes:
    """The JSON body: type, timestamp and data, as Standard Webhooks suggests; the same on every attempt."""
    message = message_for(payload, trusted)
    return json.dumps({"type": message["type"], "timestamp": message["created_at"], "data": message},
                      ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str = ""
    retry_after: float | None = None  # seconds the receiver asked us to wait
    permanent: bool = False  # retrying cannot help (a mail address refused)
    gone: bool = False  # 410: the endpoint is gone; disable it


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is a failed attempt, never re-sent elsewhere
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return max(0.0, (when - now).total_seconds())


def post_webhook(webhook: Webhook, message_id: str, body: bytes, now: datetime | None = None) -> SendResult:
    timestamp = int(time.time())
    request = urllib.request.Request(webhook.url, data=body, method="POST", headers={
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(webhook.secret, message_id, timestamp, body),
    })
    try:
        with _OPENER.open(request, timeout=webhook.timeout_seconds) as response:
            response.read(65536)
            return SendResult(True, response.status)
    except urllib.error.HTTPError as err:
        code = err.code
        after = retry_after_seconds(err.headers.get("Retry-After") if err.headers else None, now or _now())
        err.close()
        return SendResult(False, code, f"HTTP {code}", retry_after=after, gone=code == 410)
    except (TimeoutError, urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return SendResult(False, None, f"{type(reason).__name__}: {reason}"[:300])


# -- mail --------------------------------------------------------------------------------------------
def email_text(payload: dict, trusted: bool) -> tuple[str, str]:
    message = message_for(payload, trusted)
    changes = message["changes"]
    subject = f"[datafactory] 线索 {message['lead_id']}: {len(changes)} 处变更" + (
        f" ({', '.join(message['fields'])})" if message["fields"] else "")
    lines = [f"{message['owner']}，您好：", "",
             f"您负责的线索 {message['lead_id']} 有变更 (lead {message['lead_id']} changed):", ""]
    for c in changes:
        why = f"{c['action']} by {c['actor']}" + (f"; {c['cause']}" if c["cause"] else "")
        lines.append(f"  {c['field']}: {c['old'] or '—'} → {c['new'] or '—'}   [{why}]")
    for note in message.get("notes", []):
        lines.append(f"  * {note['text']}   [{note['actor']}{'; ' + note['cause'] if note['cause'] else ''}]")
    if message.get("previous_owner"):
        lines += ["", f"此前负责人 (previous owner): {message['previous_owner']}"]
    lines += ["", f"message id: {message['message_id']}",
              "个人信息已脱敏 (personal data masked)." if message.get("masked") else ""]
    return subject, "\n".join(lines).rstrip() + "\n"


def send_email(smtp: Smtp, to: str, payload: dict) -> SendResult:
    import os

    subject, text = email_text(payload, smtp.trusted)
    mail = EmailMessage()
    mail["From"] = smtp.sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{payload['message_id']}@datafactory>"  # the same on every attempt
    mail.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds) as client:
            if smtp.starttls:  # the server's certificate is verified (system CAs, or smtp.cafile)
                client.starttls(context=ssl.create_default_context(cafile=smtp.cafile or None))
            if smtp.username:
                client.login(smtp.username, os.environ.get(smtp.password_env, ""))
            client.send_message(mail)
        return SendResult(True, 250)
    except smtplib.SMTPRecipientsRefused as err:
        codes = [code for code, _ in err.recipients.values()]
        return SendResult(False, codes[0] if codes else None, "recipient refused",
                          permanent=all(c >= 500 for c in codes))
    except smtplib.SMTPResponseException as err:
        return SendResult(False, err.smtp_code, f"SMTP {err.smtp_code}", permanent=err.smtp_code >= 500)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as err:
        return SendResult(False, None, f"{type(err).__name__}: {err}"[:300])


# -- the queue ----------------------------------------------------------------------------------------
@dataclass
class DeliveryReport:
    routed: int = 0  # new messages given their deliveries
    unrouted: int = 0  # messages for owners no endpoint serves
    attempted: int = 0
    delivered: int = 0
    failed: int = 0  # will be tried again
    dead: int = 0  # no attempt left (or refused for good)
    endpoints_disabled: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int | str]:
        return {"routed": self.routed, "unrouted": self.unrouted, "attempted": self.attempted,
                "delivered": self.delivered, "failed": self.failed, "dead": self.dead,
                "endpoints_disabled": ", ".join(self.endpoints_disabled)}


def next_delay(config: NotifyConfig, attempts_done: int, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `attempts_done` attempts; None when none is left."""
    if attempts_done >= len(config.schedule):
        return None
    base = config.schedule[attempts_done]
    spread = (rng or random).uniform(-config.jitter, config.jitter) if config.jitter else 0.0
    return max(0.0, base * (1 + spread))


def route(tx: StoreChange, config: NotifyConfig, now: datetime) -> tuple[int, int]:
    """Give each new message one delivery per endpoint serving its owner. Returns (routed, without an endpoint)."""
    if not config.has_channels:
        return 0, 0  # no notify.yaml yet: messages wait, unrouted, until one is written
    fresh = tx.unrouted_messages()
    if not fresh:
        return 0, 0
    rows = [(outbox_id, endpoint) for outbox_id, owner in fresh for endpoint in config.endpoints_for(owner)]
    frame = pd.DataFrame(rows, columns=["outbox_id", "endpoint"])
    frame["channel"] = ["smtp" if e == EMAIL_ENDPOINT else "webhook" for e in frame["endpoint"]]
    tx.route_messages(frame, fresh[-1][0], now)
    served = {outbox_id for outbox_id, _ in rows}
    return len(fresh), sum(1 for outbox_id, _ in fresh if outbox_id not in served)


def due_endpoints(config: NotifyConfig, disabled: set[str]) -> list[str]:
    """The endpoints deliveries may go to now: configured and not disabled."""
    return [e for e in ([w.endpoint for w in config.webhooks] + ([EMAIL_ENDPOINT] if config.smtp else []))
            if e not in disabled]


def claim(tx: StoreChange, config: NotifyConfig, now: datetime, limit: int, lease_seconds: float) -> pd.DataFrame:
    due = tx.claim_deliveries(due_endpoints(config, tx.disabled_endpoints()), now, limit,
                              now + timedelta(seconds=lease_seconds))
    messages = build_messages(tx, due.drop_duplicates("outbox_id"))
    return due.assign(message=[messages[int(i)] for i in due["outbox_id"]])


@dataclass
class _Outcome:
    outbox_id: int
    endpoint: str
    attempt: int
    result: SendResult
    status: str  # pending (try again at next_at) | delivered | dead | released (untried, back in the queue)
    next_at: datetime | None
    started: datetime
    duration_ms: float
    disable_reason: str = ""


RECORD_EVERY = 100  # results are written in batches: a crash re-sends at most this many (same webhook-id)
RECORD_SECONDS = 2.0


def _record(store: LeadStore, outcomes: list[_Outcome]) -> None:
    """Write a batch of attempt results in one short transaction under the store's writer lock."""
    if not outcomes:
        return
    moment = _now()
    tried = [o for o in outcomes if o.status != "released"]
    with store.change("notify: record delivery attempts") as tx:
        if tried:
            frame = pd.DataFrame({
                "outbox_id": [o.outbox_id for o in tried], "endpoint": [o.endpoint for o in tried],
                "attempt": [o.attempt for o in tried], "status": [o.status for o in tried],
                "next_at": pd.Series([o.next_at for o in tried], dtype="datetime64[us]"),
                "status_code": pd.array([o.result.status_code for o in tried], dtype="Int64"),
                "error": [o.result.error or None for o in tried],
                "started": pd.Series([o.started for o in tried], dtype="datetime64[us]"),
                "duration_ms": [o.duration_ms for o in tried],
            })
            tx.record_attempts(frame, moment)
        for o in outcomes:
            if o.status == "released":  # its endpoint was disabled during this pass: back in the queue, untried
                tx.release_delivery(o.outbox_id, o.endpoint)
            if o.disable_reason:
                tx.disable_endpoint(o.endpoint, moment, o.disable_reason)


def deliver_due(store: LeadStore, config: NotifyConfig, limit: int = 500, now: datetime | None = None,
                rng: random.Random | None = None) -> DeliveryReport:
    """Route new messages, then attempt every delivery that is due, once. Safe to run concurrently.

    Call it outside any lead change: it sends while no transaction is open, and writes the results in
    short transactions of their own (every RECORD_EVERY results or RECORD_SECONDS) under the writer lock."""
    report = DeliveryReport()
    now = now or _now()
    lease = max([w.timeout_seconds for w in config.webhooks] + [config.smtp.timeout_seconds if config.smtp else 0])
    with store.change("notify: route and claim deliveries") as tx:
        report.routed, report.unrouted = route(tx, config, now)
        claimed = claim(tx, config, now, limit,
                        lease_seconds=RECORD_SECONDS + 2 * lease + 60)
    gone: set[str] = set()
    outcomes: list[_Outcome] = []
    flushed = time.monotonic()
    for row in claimed.itertuples(index=False):
        if outcomes and (len(outcomes) >= RECORD_EVERY or time.monotonic() - flushed > RECORD_SECONDS):
            _record(store, outcomes)
            outcomes, flushed = [], time.monotonic()
        outcomes.append(_attempt(row, config, gone, report, rng))
    _record(store, outcomes)
    return report


def _attempt(row, config: NotifyConfig, gone: set[str], report: DeliveryReport,
             rng: random.Random | None) -> _Outcome:
    endpoint = row.endpoint
    started = _now()
    attempt = int(row.attempts) + 1
    if endpoint in gone:
        return _Outcome(row.outbox_id, endpoint, attempt - 1, SendResult(False), "released", None, started, 0.0)
    clock = time.monotonic()
    webhook = config.webhook(endpoint)
    if webhook is not None:
        result = post_webhook(webhook, row.message_id, webhook_body(row.message, webhook.trusted), started)
    elif config.smtp is not None and config.owner_emails.get(row.owner):
        result = send_email(config.smtp, config.owner_emails[row.owner], row.message)
    else:
        result = SendResult(False, None, f"owner {row.owner} has no email in {config.source}", permanent=True)
    duration = (time.monotonic() - clock) * 1000
    report.attempted += 1

    def outcome(status: str, next_at: datetime | None = None, reason: str = "") -> _Outcome:
        return _Outcome(row.outbox_id, endpoint, attempt, result, status, next_at, started, duration, reason)

    if result.ok:
        report.delivered += 1
        return outcome("delivered")
    log.warning("notify: attempt %d of message %s to %s failed: %s", attempt, row.message_id, endpoint,
                result.error)
    if result.gone:
        gone.add(endpoint)
        report.dead += 1
        report.endpoints_disabled.append(endpoint)
        return outcome("dead", reason=f"HTTP 410 Gone for message {row.message_id}")
    delay = None if result.permanent else next_delay(config, attempt, rng)
    if delay is None:
        report.dead += 1
        return outcome("dead")
    if result.retry_after is not None:  # never before the receiver asked; at most a day
        delay = max(delay, min(result.retry_after, MAX_RETRY_AFTER_SECONDS))
    report.failed += 1
    return outcome("pending", _now() + timedelta(seconds=delay))


@dataclass
class DueBatch:
    """What the outbox sensor asks a run for: the due messages' id range and their attempts."""
    unrouted: int
    deliveries: int
    first_id: int
    last_id: int
    max_attempt: int
    fingerprint: str
    oldest_due: datetime | None

    @property
    def empty(self) -> bool:
        return not self.unrouted and not self.deliveries


def due_batch(store: LeadStore, config: NotifyConfig, now: datetime | None = None) -> DueBatch:
    now = now or _now()
    with store.reading() as tx:
        unrouted = tx.unrouted_since() if config.has_channels else []
        due = tx.due_deliveries(due_endpoints(config, tx.disabled_endpoints()), now)
    ids = [r[0] for r in unrouted] + [r[0] for r in due]
    if not ids:
        return DueBatch(0, 0, 0, 0, 0, "", None)
    text = "|".join(sorted(f"{r[0]}/{r[1]}/{r[2]}/{r[3]}" for r in due) + [str(r[0]) for r in unrouted])
    times = [r[1] for r in unrouted] + [r[4] for r in due]
    return DueBatch(len(unrouted), len(due), min(ids), max(ids), max([r[2] for r in due] or [0]),
                    hashlib.sha1(text.encode()).hexdigest()[:10], min(t for t in times if t is not None))


def requeue(store: LeadStore, ident: str, now: datetime | None = None) -> int:
    """Put a message's failed or dead deliveries back in the queue, due now, attempts from zero.

    ident: an outbox id, a message id (msg_…), or `all-dead`. Returns the deliveries re-queued."""
    now = now or _now()
    with store.change(f"notify: re-queue {ident}") as tx:
        return tx.requeue_deliveries(ident, now)


def enable_endpoint(store: LeadStore, name: str) -> bool:
    endpoint = name if ":" in name or name == EMAIL_ENDPOINT else f"webhook:{name}"
    with store.change(f"notify: enable {endpoint}") as tx:
        return tx.enable_endpoint(endpoint)


@dataclass
class QueueStatus:
    messages: int
    unrouted: int
    by_status: dict[str, int]
    failing: pd.DataFrame  # pending deliveries that failed at least once
    dead: pd.DataFrame
    disabled: pd.DataFrame
    next_due: datetime | None


def queue_status(store: LeadStore) -> QueueStatus:
    with store.reading() as tx:
        return QueueStatus(**tx.queue_overview())
