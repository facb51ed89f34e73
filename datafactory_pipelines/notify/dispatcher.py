"""The notification dispatcher: stored events applied and owners told within a second or two, unattended.

Before it, an event waited for `event_feed_sensor` (5-10 s), an `apply_lead_events` run (7-11 s of launch
for a 0.2 s step), `outbox_sensor` (15 s) and a `deliver_notifications` run (7-12 s): 27 s median from
POST /events to the webhook. The dispatcher is one long-lived thread of `datafactory serve --dispatch`:
- woken at once by the server's own commits (`wake`), and by any other process's change (an import,
  `lead set`, an event file) through the store's change marker, written when a writer lets go of the
  writer lock: read every POLL_SECONDS (a few bytes), no query and no connection while nothing changed;
- a pass applies the waiting events with the rules (the same `apply_events`, one transaction per batch),
  then routes and delivers what is due (the same `deliver_due`: Standard Webhooks, retries, dead letters);
- it sleeps until the next change or the next retry falls due;
- after each batch it appends counts to the journal (notify/journal.py), which Dagster's
  `dispatch_journal_sensor` records as materializations of `lead_events` and `notification_deliveries`;
- it touches a heartbeat file while alive: `event_feed_sensor` and `outbox_sensor` then hand over to it
  instead of launching a run per batch, and take over again if it stops.
One dispatcher per store (a file lock); a second server's dispatcher waits, passive, until the first ends.

No message is lost: events and outbox rows are in the store before anyone is told; a pass killed midway
leaves its events unapplied (one transaction) and its claimed deliveries due again when their lease runs
out (LEASE_MARGIN_SECONDS beyond two attempt timeouts), re-sent with the same `webhook-id`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from datafactory_pipelines.notify.journal import DELIVERIES, EVENTS, Journal, journal_path
from datafactory_pipelines.store import LeadStore
from datafactory_pipelines.store.dispatch_queries import dispatch_state
from datafactory_pipelines.store.writer_lock import changed_marker

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often the change marker is looked at (a read of a few bytes)
HEARTBEAT_SECONDS = 2.0
ALIVE_SECONDS = 10.0  # a heartbeat older than this: no dispatcher (the sensors take over)
EVENT_BATCH = 5000  # events per transaction, as the feed sensor's runs
DELIVERY_BATCH = 50  # deliveries claimed per pass: a killed pass re-sends at most this many
LEASE_MARGIN_SECONDS = 5.0
FIRST_RETRY_SECONDS = 1.0  # after a failed pass (the store busy for long, a bug); doubling while they fail
MAX_RETRY_SECONDS = 60.0


def heartbeat_path(store_path: str | os.PathLike[str]) -> Path:
    path = Path(store_path)
    return path.with_name(path.name + ".dispatcher")


def dispatcher_alive(store_path: str | os.PathLike[str], within: float = ALIVE_SECONDS) -> str | None:
    """What the live dispatcher of this store says of itself (its pid), or None when there is none."""
    beat = heartbeat_path(store_path)
    try:
        if time.time() - beat.stat().st_mtime > within:
            return None
        return beat.read_text(encoding="utf-8").strip() or "a dispatcher"
    except OSError:
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _marker(path: Path) -> str:
    """The change marker's text (the last writer's pid and release time, in ns); "" when there is none yet."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class PassResult:
    events: int = 0
    attempted: int = 0
    more: bool = False  # a batch was full: go again at once
    next_due: datetime | None = None


@dataclass
class DispatcherStats:
    passes: int = 0
    events_applied: int = 0
    deliveries_attempted: int = 0
    delivered: int = 0
    errors: int = 0
    last_error: str = ""
    started_at: float = field(default_factory=time.time)


class Dispatcher:
    """Apply waiting events and deliver due notifications, woken by commits; one thread."""

    def __init__(self, store: LeadStore, home: Path, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.home = Path(home)
        self.poll_seconds = poll_seconds
        self.changed_path = changed_marker(store.path)
        self.heartbeat = heartbeat_path(store.path)
        self.journal = Journal(journal_path(store.path))
        self.stats = DispatcherStats()
        self._owner_lock = FileLock(str(store.path.with_name(store.path.name + ".dispatcher.lock")),
                                    thread_local=False)
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._rules: Any = None
        self._rules_key: tuple = ()
        self._thread = threading.Thread(target=self._loop, name="notify-dispatcher", daemon=True)

    # -- life --------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Something was committed in this process: look now."""
        self._woken.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._woken.set()
        self._thread.join(timeout=timeout)

    @property
    def active(self) -> bool:
        return self._owner_lock.is_locked

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._owner_lock.acquire(timeout=0)
            except Timeout:  # another server's dispatcher serves this store: stand by
                self._stopping.wait(HEARTBEAT_SECONDS)
                continue
            served = threading.Event()
            beating = threading.Thread(target=self._beat, args=(served,), name="notify-dispatcher-heartbeat",
                                       daemon=True)
            beating.start()
            try:
                self._serve()
            finally:
                served.set()
                beating.join()
                with contextlib.suppress(OSError):
                    self.heartbeat.unlink(missing_ok=True)
                self._owner_lock.release()

    def _beat(self, served: threading.Event) -> None:
        """The heartbeat, from a thread of its own: a long pass (5,000 events, a slow endpoint) is not a death."""
        while not served.is_set():
            with contextlib.suppress(OSError):
                self.heartbeat.write_text(f"pid {os.getpid()}", encoding="utf-8")
            served.wait(HEARTBEAT_SECONDS)

    def _serve(self) -> None:
        log.info("notify dispatcher (pid %d) serves %s", os.getpid(), self.store.path)
        seen: str | None = None  # the change marker's text when the last pass began
        next_due: datetime | None = None
        failures = 0
        while not self._stopping.is_set():
            changed = _marker(self.changed_path)
            due = next_due is not None and _utcnow() >= next_due
            if self._woken.is_set() or changed != seen or due:
                self._woken.clear()
                seen = changed  # taken before the pass reads: a commit during it is seen by the next look
                try:
                    result = self.run_pass()
                    next_due, failures = result.next_due, 0
                    if result.more:
                        self._woken.set()
                except Exception as exc:  # noqa: BLE001 - the thread must live on; tried again after a pause
                    failures += 1
                    self.stats.errors += 1
                    self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
                    pause = min(FIRST_RETRY_SECONDS * 2 ** (failures - 1), MAX_RETRY_SECONDS)
                    log.exception("notify dispatcher: a pass failed (%d in a row); trying again in %.0f s",
                                  failures, pause)
                    next_due, seen = None, None  # the next look runs a pass whatever changed
                    self._stopping.wait(pause)
                continue
            self._woken.wait(self.poll_seconds)

    # -- one pass ----------------------------------------------------------------------------------
    def run_pass(self) -> PassResult:
        """Apply the next batch of waiting events, then route and deliver what is due."""
        from datafactory_pipelines.notify.config import NotifyConfigError, load_notify_config

        try:
            config = load_notify_config(self.home)
        except NotifyConfigError as err:
            log.warning("notify dispatcher: %s (messages wait in the outbox)", err)
            config = None
        endpoints = self._endpoints(config)
        state = dispatch_state(self.store, endpoints, EVENT_BATCH)
        result = PassResult()
        self.stats.passes += 1
        if state.events_waiting:
            result.events = self._apply(state.first_event, state.last_event)
            result.more = state.events_waiting >= EVENT_BATCH
        if endpoints:
            due = state.next_delivery_at is not None and state.next_delivery_at <= _utcnow()
            if state.unrouted_messages or result.events or due:
                result.attempted = self._deliver(config)
                result.more = result.more or result.attempted >= DELIVERY_BATCH
                state = dispatch_state(self.store, endpoints, 1)
            result.next_due = state.next_delivery_at
        return result

    @staticmethod
    def _endpoints(config: Any) -> list[str]:
        if config is None or not config.has_channels:
            return []
        from datafactory_pipelines.notify.config import EMAIL_ENDPOINT

        return [w.endpoint for w in config.webhooks] + ([EMAIL_ENDPOINT] if config.smtp else [])

    def _rule_set(self) -> Any:
        """The rules, compiled again only when a rule file changed."""
        from datafactory_pipelines.rules import load_rules, rule_files

        key = tuple((str(p), _mtime(p)) for p in rule_files(self.home))
        if self._rules is None or key != self._rules_key:
            self._rules, self._rules_key = load_rules(self.home), key
        return self._rules

    def _apply(self, first: int, last: int) -> int:
        from datafactory_pipelines.events.apply import apply_events

        report = apply_events(self.store, self._rule_set(), first, last)
        if report.events:
            self.stats.events_applied += report.events
            self.journal.append(EVENTS, {
                "events": report.events, "first_seq": report.first_seq, "last_seq": report.last_seq,
                "field_changes": report.field_changes, "conflicts_queued": report.conflicts,
                "contacts_flagged": report.flags, "leads_touched": report.leads_touched,
                "by_outcome": dict(report.by_status), "by_rule": dict(report.by_rule),
                "by_type": dict(report.by_type),
                "by_type_and_outcome": [[t, s, n] for (t, s), n in sorted(report.by_type_and_status.items())],
            })
        return report.events

    def _deliver(self, config: Any) -> int:
        from datafactory_pipelines.notify.delivery import RECORD_SECONDS, deliver_due, longest_timeout

        lease = RECORD_SECONDS + 2 * longest_timeout(config) + LEASE_MARGIN_SECONDS
        report = deliver_due(self.store, config, limit=DELIVERY_BATCH, lease_seconds=lease)
        self.stats.deliveries_attempted += report.attempted
        self.stats.delivered += report.delivered
        if report.attempted or report.routed:
            self.journal.append(DELIVERIES, report.as_metadata())
        return report.attempted
