"""The console's accounts: a name, a role and an Argon2id password hash, in `$DATAFACTORY_HOME/console_users.json`.

Why a file beside the store and not a table in it: accounts say who may use this server, not anything about
leads. A store backup travels (to a test machine, to a colleague debugging an import) and must not carry the
password hashes with it; adding an account never waits for the store's writer lock (a 1M-record import holds
it for a minute); and the file is private to the account that runs the server (mode 0600).
Passwords are never stored, logged or echoed: only argon2-cffi's encoded hash (which names its parameters).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

ROLES = ("viewer", "operator", "admin")
USERS_FILE = "console_users.json"
MIN_PASSWORD_LENGTH = 10
_NAME = re.compile(r"^[\w.@-]{1,64}$")  # letters (any script), digits, _ . @ -
_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile
# verified against when a name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


class UserError(ValueError):
    """An account that cannot be made as asked."""


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def may(self, role: str) -> bool:
        """Whether this user has at least `role` (viewer < operator < admin)."""
        return ROLES.index(self.role) >= ROLES.index(role)


class UserBook:
    """The accounts file of one DATAFACTORY_HOME."""

    _lock = threading.Lock()

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / USERS_FILE

    def _read(self) -> dict[str, dict]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8")).get("users", {})
        except FileNotFoundError:
            return {}

    def _write(self, users: dict[str, dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".console_users.")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"users": users}, out, ensure_ascii=False, indent=1)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def add(self, name: str, role: str, password: str, replace: bool = False) -> User:
        if not _NAME.match(name):
            raise UserError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'")
        if role not in ROLES:
            raise UserError(f"role {role!r}: one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise UserError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
        with self._lock:
            users = self._read()
            if name in users and not replace:
                raise UserError(f"user {name} exists (use --replace to set a new password or role)")
            users[name] = {"role": role, "password_hash": _hasher.hash(password),
                           "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            self._write(users)
        logger.info("console user %s saved with role %s", name, role)
        return User(name, role)

    def remove(self, name: str) -> bool:
        with self._lock:
            users = self._read()
            if users.pop(name, None) is None:
                return False
            self._write(users)
            return True

    def list(self) -> list[User]:
        return [User(name, entry["role"]) for name, entry in sorted(self._read().items())]

    def check(self, name: str, password: str) -> User | None:
        """The user, when the password is theirs; None otherwise (as slowly either way)."""
        entry = self._read().get(name)
        try:
            _hasher.verify(entry["password_hash"] if entry else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return User(name, entry["role"]) if entry else None
