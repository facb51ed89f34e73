"""Signing a backup's manifest with a key the operator keeps outside the store.

Anyone who can write the backup folder can recompute every SHA-256 and every history hash: the checks of
`backup_check` then prove a backup is consistent, not that it is ours. An HMAC-SHA256 over the manifest
with `DATAFACTORY_BACKUP_KEY` (never written to the store, the backup or a log) proves that. With the key
set, `backup` signs and `restore-backup` refuses a backup that is unsigned or signed with another key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

KEY_VARIABLE = "DATAFACTORY_BACKUP_KEY"
SIGNATURE_FIELD = "signature"
ALGORITHM = "hmac-sha256"


def backup_key() -> bytes | None:
    """The operator's backup key, or None when none is configured."""
    key = os.environ.get(KEY_VARIABLE, "")
    return key.encode("utf-8") if key else None


def _canonical(manifest: dict) -> bytes:
    """The manifest's content without its signature, in one byte form whatever its key order or spacing."""
    unsigned = {k: v for k, v in manifest.items() if k != SIGNATURE_FIELD}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(manifest: dict, key: bytes) -> str:
    return f"{ALGORITHM}:" + hmac.new(key, _canonical(manifest), hashlib.sha256).hexdigest()


def signature_problem(manifest: dict, key: bytes | None) -> str | None:
    """Why this manifest's signature cannot be trusted with this key (None: it can, or there is no key)."""
    signature = manifest.get(SIGNATURE_FIELD)
    if key is None:
        return None
    if signature is None:
        return f"the backup is not signed, and {KEY_VARIABLE} is set: only signed backups are restored"
    if not isinstance(signature, str) or not hmac.compare_digest(signature, sign(manifest, key)):
        return (f"the manifest's signature does not match {KEY_VARIABLE} (the manifest was changed after "
                "it was signed, or signed with another key)")
    return None
