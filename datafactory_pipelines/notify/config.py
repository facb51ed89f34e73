"""Where notifications go: `$DATAFACTORY_HOME/notify.yaml`.

```yaml
webhooks:
  - name: crm
    url: https://crm.example.com/hooks/datafactory
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw     # or secret_env: CRM_WEBHOOK_SECRET
    owners: ['*']          # '*' = every owner; or a list of owner names
    trusted: false         # true: full personal values; false (default): masked
owners:
  李娜: {email: lina@example.com}
smtp: {host: smtp.example.com, port: 587, from: datafactory@example.com, starttls: true,
       username: datafactory, password_env: SMTP_PASSWORD, trusted: false}   # cafile: a private CA
retry:                     # delays before each attempt (Svix's schedule); jitter is a fraction
  schedule_seconds: [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
  jitter: 0.2
```
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Svix: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
DEFAULT_SCHEDULE = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
DEFAULT_JITTER = 0.2
EMAIL_ENDPOINT = "email"


class NotifyConfigError(ValueError):
    """notify.yaml cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    secret: bytes  # the decoded key of the whsec_ secret
    owners: tuple[str, ...] = ("*",)
    trusted: bool = False
    timeout_seconds: float = 15.0

    @property
    def endpoint(self) -> str:
        return f"webhook:{self.name}"

    def serves(self, owner: str) -> bool:
        return "*" in self.owners or owner in self.owners


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 25
    sender: str = ""
    starttls: bool = False
    username: str = ""
    password_env: str = ""
    trusted: bool = False
    timeout_seconds: float = 30.0
    cafile: str = ""  # a private CA to verify the server's STARTTLS certificate against


@dataclass(frozen=True)
class NotifyConfig:
    webhooks: tuple[Webhook, ...] = ()
    owner_emails: dict[str, str] = field(default_factory=dict)
    smtp: Smtp | None = None
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = DEFAULT_JITTER
    source: str = ""

    @property
    def has_channels(self) -> bool:
        return bool(self.webhooks) or (self.smtp is not None and bool(self.owner_emails))

    def endpoints_for(self, owner: str) -> list[str]:
        names = [w.endpoint for w in self.webhooks if w.serves(owner)]
        if self.smtp is not None and self.owner_emails.get(owner):
            names.append(EMAIL_ENDPOINT)
        return names

    def webhook(self, endpoint: str) -> Webhook | None:
        return next((w for w in self.webhooks if w.endpoint == endpoint), None)

    def knows(self, endpoint: str) -> bool:
        return self.webhook(endpoint) is not None or (endpoint == EMAIL_ENDPOINT and self.smtp is not None)


def decode_secret(secret: str, where: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after `whsec_`."""
    if not secret.startswith("whsec_"):
        raise NotifyConfigError(f"{where}: the secret must start with whsec_ (a Standard Webhooks secret)")
    try:
        key = base64.b64decode(secret[len("whsec_"):] + "==", validate=False)
    except (binascii.Error, ValueError) as err:
        raise NotifyConfigError(f"{where}: the secret after whsec_ is not base64: {err}") from None
    if len(key) < 16:
        raise NotifyConfigError(f"{where}: the secret is too short (at least 16 bytes after base64 decoding)")
    return key


def load_notify_config(home: str | os.PathLike[str]) -> NotifyConfig:
    """notify.yaml under the data folder; no file means no endpoints (messages wait in the outbox)."""
    path = Path(home) / "notify.yaml"
    if not path.exists():
        return NotifyConfig(source=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise NotifyConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise NotifyConfigError(f"{path}: expected a mapping with webhooks, owners, smtp, retry")
    return parse_notify_config(data, str(path))


def parse_notify_config(data: dict, source: str = "notify.yaml") -> NotifyConfig:
    webhooks = []
    for i, item in enumerate(data.get("webhooks") or []):
        where = f"{source}: webhooks[{i}]"
        if not isinstance(item, dict):
            raise NotifyConfigError(f"{where}: expected a mapping with name, url, secret")
        for key in ("name", "url"):
            if not item.get(key):
                raise NotifyConfigError(f"{where}: {key} is missing")
        url = str(item["url"])
        if not url.startswith(("http://", "https://")):
            raise NotifyConfigError(f"{where}: url must start with http:// or https://")
        secret = item.get("secret") or os.environ.get(str(item.get("secret_env") or ""), "")
        if not secret:
            raise NotifyConfigError(f"{where}: secret (or secret_env naming a set variable) is missing")
        owners = item.get("owners", ["*"])
        owners = [owners] if isinstance(owners, str) else list(owners or [])
        webhooks.append(Webhook(name=str(item["name"]), url=url, secret=decode_secret(str(secret), where),
                                owners=tuple(str(o) for o in owners), trusted=bool(item.get("trusted", False)),
                                timeout_seconds=float(item.get("timeout_seconds", 15))))
    names = [w.name for w in webhooks]
    if len(set(names)) != len(names):
        raise NotifyConfigError(f"{source}: webhook names must be unique ({', '.join(names)})")
    owner_emails = {}
    for owner, info in (data.get("owners") or {}).items():
        email = (info or {}).get("email", "") if isinstance(info, dict) else ""
        if email and "@" not in str(email):
            raise NotifyConfigError(f"{source}: owners.{owner}.email is not an email address")
        if email:
            owner_emails[str(owner)] = str(email)
    smtp = None
    if data.get("smtp"):
        raw = data["smtp"]
        if not isinstance(raw, dict) or not raw.get("host"):
            raise NotifyConfigError(f"{source}: smtp.host is missing")
        if not raw.get("from"):
            raise NotifyConfigError(f"{source}: smtp.from is missing")
        smtp = Smtp(host=str(raw["host"]), port=int(raw.get("port", 25)), sender=str(raw["from"]),
                    starttls=bool(raw.get("starttls", False)), username=str(raw.get("username") or ""),
                    password_env=str(raw.get("password_env") or ""), trusted=bool(raw.get("trusted", False)),
                    timeout_seconds=float(raw.get("timeout_seconds", 30)), cafile=str(raw.get("cafile") or ""))
    retry = data.get("retry") or {}
    schedule = tuple(float(s) for s in retry.get("schedule_seconds", DEFAULT_SCHEDULE))
    if not schedule or any(s < 0 for s in schedule):
        raise NotifyConfigError(f"{source}: retry.schedule_seconds must be a non-empty list of delays >= 0")
    jitter = float(retry.get("jitter", DEFAULT_JITTER))
    if not 0 <= jitter < 1:
        raise NotifyConfigError(f"{source}: retry.jitter must be a fraction in [0, 1)")
    return NotifyConfig(webhooks=tuple(webhooks), owner_emails=owner_emails, smtp=smtp, schedule=schedule,
                        jitter=jitter, source=source)
