"""API keys per sending system: who may POST events, and for which `source`s.

A key is made once (`datafactory keys add crm --source https://crm.example.com --scopes events:write`), shown
once, and only its SHA-256 is kept, in a JSON file (`$DATAFACTORY_API_KEYS`, default
`$DATAFACTORY_HOME/api_keys.json`, written owner-only). The keys live outside the lead store on purpose:
they say who may talk to the server, not what the leads are; a restored backup cannot bring back a
revoked key; and the server checks a key without touching the store (an unauthenticated caller costs a
dictionary lookup, never a store connection). The server re-reads the file when it changes, so a revoked
key stops working on the next request.

The single `DATAFACTORY_API_TOKEN` stays what it was: the admin key, which may send for any source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

logger = logging.getLogger(__name__)

SCOPES = ("events:write",)
ADMIN = "admin"  # the name the admin token goes by in `via` and in answers
ANY_SOURCE = "*"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_PREFIX = "dfk_"


class ApiKeyError(ValueError):
    """A key file or a key command that cannot be used; says which and why."""


@dataclass
class ApiKey:
    name: str
    sha256: str
    sources: list[str]
    scopes: list[str]
    created_at: str = ""
    created_by: str = ""
    revoked_at: str | None = None
    admin: bool = field(default=False, repr=False)

    @property
    def active(self) -> bool:
        return not self.revoked_at

    def may_send(self, source: str) -> bool:
        return self.admin or ANY_SOURCE in self.sources or source in self.sources

    def as_entry(self) -> dict[str, object]:
        entry = asdict(self)
        entry.pop("admin")
        return entry


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def keys_path(home: Path) -> Path:
    configured = os.environ.get("DATAFACTORY_API_KEYS")
    return Path(configured) if configured else home / "api_keys.json"


def read_keys(path: Path) -> list[ApiKey]:
    """Every key in the file (revoked ones too); [] when there is no file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        document = json.loads(text) if text.strip() else {"keys": []}
    except json.JSONDecodeError as err:
        raise ApiKeyError(f"{path}: not JSON ({err.msg}, line {err.lineno})") from err
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ApiKeyError(f"{path}: expected {{\"keys\": [...]}}")
    keys = []
    for i, entry in enumerate(entries, start=1):
        where = f"{path}: key {i}"
        if not isinstance(entry, dict):
            raise ApiKeyError(f"{where}: expected an object")
        try:
            key = ApiKey(name=str(entry["name"]), sha256=str(entry["sha256"]).lower(),
                         sources=[str(s) for s in entry.get("sources", [])],
                         scopes=[str(s) for s in entry.get("scopes", [])],
                         created_at=str(entry.get("created_at", "")), created_by=str(entry.get("created_by", "")),
                         revoked_at=entry.get("revoked_at") or None)
        except KeyError as err:
            raise ApiKeyError(f"{where}: missing {err.args[0]!r}") from err
        if not re.fullmatch(r"[0-9a-f]{64}", key.sha256):
            raise ApiKeyError(f"{where} ({key.name}): sha256 must be 64 hex digits")
        keys.append(key)
    return keys


def _write_keys(path: Path, keys: list[ApiKey]) -> None:
    """Atomically (a reader sees the old file or the new one), readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"keys": [k.as_entry() for k in keys]}, ensure_ascii=False, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".api_keys-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def add_key(path: Path, name: str, sources: list[str], scopes: list[str], by: str) -> str:
    """Make a key for a sending system; returns the key itself (shown once, never stored)."""
    if not _NAME.match(name):
        raise ApiKeyError(f"key name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ApiKeyError(f"scopes {', '.join(unknown) or '(none)'}: known scopes are {', '.join(SCOPES)}")
    cleaned = [s.strip() for s in sources if s.strip()]
    if not cleaned:
        raise ApiKeyError("a key needs at least one --source it may send events for")
    if any(len(s) > 500 for s in cleaned):
        raise ApiKeyError("a source is at most 500 characters (as in an event)")
    keys = read_keys(path)
    if any(k.name == name and k.active for k in keys):
        raise ApiKeyError(f"an active key named {name!r} exists; revoke it first")
    secret = f"{KEY_PREFIX}{secrets.token_urlsafe(32)}"
    keys.append(ApiKey(name, key_digest(secret), cleaned, sorted(set(scopes)), _now(), by))
    _write_keys(path, keys)
    logger.info("API key %s added for sources %s", name, cleaned)
    return secret


def revoke_key(path: Path, name: str) -> int:
    """Revoke the active key(s) of that name; how many were revoked."""
    keys = read_keys(path)
    revoked = 0
    for key in keys:
        if key.name == name and key.active:
            key.revoked_at = _now()
            revoked += 1
    if not revoked:
        raise ApiKeyError(f"no active key named {name!r}")
    _write_keys(path, keys)
    return revoked


class KeyRing:
    """The keys the server accepts: the admin token, and the file's active keys (re-read when it changes)."""

    def __init__(self, path: Path | None, admin_token: str | None) -> None:
        self.path = path
        self.admin = ApiKey(ADMIN, key_digest(admin_token), [ANY_SOURCE], list(SCOPES), admin=True) \
            if admin_token else None
        self._stamp: tuple[int, int] | None = None
        self._by_digest: dict[str, ApiKey] = {}
        self._keys_in_use = False
        self.refresh()

    def refresh(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self._stamp:
            return
        try:
            keys = read_keys(self.path)
        except ApiKeyError:  # a half-edited file: keep the keys we had, say so
            logger.exception("API key file unreadable; keeping the keys read before")
            return
        self._by_digest = {k.sha256: k for k in keys if k.active}
        self._keys_in_use = self._keys_in_use or bool(keys)  # once keys are in use, never open again
        self._stamp = stamp

    @property
    def open(self) -> bool:
        """No admin token and no key ever made: the server is open (it then listens on loopback only).
        Revoking every key does not open it: a key file with only revoked keys still closes the door."""
        self.refresh()
        return self.admin is None and not self._keys_in_use

    def find(self, presented: str) -> ApiKey | None:
        """The key a caller presented, or None. Digests are compared, so no secret is compared by timing."""
        if not presented:
            return None
        self.refresh()
        digest = key_digest(presented)
        if self.admin is not None and secrets.compare_digest(digest, self.admin.sha256):
            return self.admin
        return self._by_digest.get(digest)
