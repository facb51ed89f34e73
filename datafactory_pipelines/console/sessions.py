"""Signed-in sessions, CSRF tokens and the sign-in rate limit, kept in the server's memory.

A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure when the console is served over
TLS or behind a TLS proxy); restarting the server signs everyone out. Each session carries its own CSRF token,
which every form posts back. Sign-in failures are counted per account name and per client address: after
`MAX_FAILURES` for one account (or `MAX_ADDRESS_FAILURES` from one address, over any accounts) within
`WINDOW_SECONDS`, further attempts are refused until the window passes (a right password included), so
guessing costs hours, not seconds, while colleagues behind the same address can still sign in.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from datafactory_pipelines.console.users import User

SESSION_COOKIE = "df_console"
LOGIN_CSRF_COOKIE = "df_console_login"
SESSION_SECONDS = 8 * 3600  # a working day
MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 30
WINDOW_SECONDS = 300.0


@dataclass
class Session:
    user: User
    csrf: str
    expires: float


@dataclass
class SessionBook:
    sessions: dict[str, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            now = time.monotonic()
            self.sessions = {k: s for k, s in self.sessions.items() if s.expires > now}
            self.sessions[token] = Session(user, secrets.token_urlsafe(32), now + SESSION_SECONDS)
        return token

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self.lock:
            session = self.sessions.get(token)
            if session is None or session.expires < time.monotonic():
                self.sessions.pop(token, None)
                return None
            return session

    def close(self, token: str | None) -> None:
        with self.lock:
            self.sessions.pop(token or "", None)


def same_token(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(str(given).encode(), str(expected).encode())


@dataclass
class SignInLimiter:
    """Failures per key (client address, account name) in a sliding window."""

    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    failures: dict[str, deque[float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.setdefault(key, deque())
        while times and times[0] < now - self.window:
            times.popleft()
        return times

    def retry_after(self, *keys: str) -> float:
        """Seconds until any of these keys may try again (0: now)."""
        now = time.monotonic()
        with self.lock:
            waits = [times[0] + self.window - now for key in keys
                     if len(times := self._recent(key, now)) >= self.max_failures]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self.lock:
            for key in keys:
                self._recent(key, now).append(now)
