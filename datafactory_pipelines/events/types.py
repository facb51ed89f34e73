"""Event types other systems send (CloudEvents 1.0), each with a schema of its `data`.

The models are the one definition: ingress validates with them, `GET /events/schema` publishes
their JSON schema, and rules read the normalized data they produce (contacts standardized, so a
mobile sent as "+86 139-0013-9000" matches the store's 13900139000).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from datafactory_pipelines.events.times import utc_text
from datafactory_pipelines.standardize.email import standardize_email, standardize_emails
from datafactory_pipelines.standardize.ids import standardize_wechat, standardize_wechats
from datafactory_pipelines.standardize.owner import standardize_owner
from datafactory_pipelines.standardize.phone import MOBILE_PATTERN, standardize_phone, standardize_phones
from datafactory_pipelines.standardize.text import clean_text

SPEC_VERSION = "1.0"

# Length limits at the door, per field (characters): a value longer than any real one is refused with a
# 400 naming the field, before it reaches the store, a rule, or free-text masking in a message.
MAX_CONTACT = 254  # an email address's own limit (RFC 5321); phones and WeChat ids are far shorter
MAX_NAME = 100
MAX_COMPANY = 200
MAX_TITLE = 100
MAX_ADDRESS = 500
MAX_OWNER = 100
MAX_NOTE = 1000  # reasons, user agents: free text
MAX_EXTENSION = 1000  # one CloudEvents extension attribute (a scalar)
MAX_EXTRA_DATA_CHARS = 4000  # unknown keys in `data`, serialized together


PHONE_KEYS = ("mobile", "old_mobile", "new_mobile")
EMAIL_KEYS = ("email", "old_email", "new_email")
_STANDARD_MOBILE = re.compile(MOBILE_PATTERN)


@dataclass
class StandardContacts:
    """Contact values of a whole request standardized in one vectorized call per kind (the per-value
    standardizers cost milliseconds each); values already in standard form skip it."""

    mobile: dict[str, str] = field(default_factory=dict)
    email: dict[str, tuple[str, str]] = field(default_factory=dict)  # value -> (email or "", reason)
    wechat: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, raws: list[object]) -> StandardContacts:
        phones, emails, wechats = set(), set(), set()
        for raw in raws:
            data = raw.get("data") if isinstance(raw, dict) else None
            if not isinstance(data, dict):
                continue
            channel = data.get("channel")
            for key, value in data.items():
                if not isinstance(value, str) or not value:
                    continue
                if key in PHONE_KEYS or (key == "value" and channel == "mobile"):
                    if not _STANDARD_MOBILE.fullmatch(value):
                        phones.add(value)
                elif key in EMAIL_KEYS or (key == "value" and channel == "email"):
                    emails.add(value)
                elif key == "wechat":
                    wechats.add(value)
        found = cls()
        if phones:
            values = sorted(phones)
            cleaned = standardize_phones([clean_text(v) for v in values])["mobile"].tolist()
            found.mobile = dict(zip(values, cleaned, strict=True))
        if emails:
            values = sorted(emails)
            table = standardize_emails([clean_text(v) for v in values])
            found.email = {v: (e if s != "invalid" else "", r) for v, e, s, r in zip(
                values, table["email"], table["email_status"], table["email_reason"], strict=True)}
        if wechats:
            values = sorted(wechats)
            table = standardize_wechats([clean_text(v) for v in values])
            found.wechat = {v: (w if s != "invalid" else "", r) for v, w, s, r in zip(
                values, table["wechat"], table["wechat_status"], table["wechat_reason"], strict=True)}
        return found


def _known(info: ValidationInfo | None) -> StandardContacts:
    context = info.context if info is not None else None
    return context if isinstance(context, StandardContacts) else StandardContacts()


def _mobile(value: str | None, info: ValidationInfo | None = None) -> str | None:
    if value in (None, ""):
        return None
    if _STANDARD_MOBILE.fullmatch(value):
        return value
    known = _known(info).mobile
    mobile = known[value] if value in known else standardize_phone(clean_text(str(value))).mobile
    if not mobile:
        raise ValueError("not a valid CN mobile number")
    return mobile


def _email(value: str | None, info: ValidationInfo | None = None) -> str | None:
    if value in (None, ""):
        return None
    known = _known(info).email
    if value in known:
        email, reason = known[value]
    else:
        result = standardize_email(clean_text(str(value)))
        email, reason = (result[0] if result.status != "invalid" else ""), result.reason
    if not email:
        raise ValueError(f"not a valid email address ({reason})")
    return email


def _wechat(value: str | None, info: ValidationInfo | None = None) -> str | None:
    if value in (None, ""):
        return None
    known = _known(info).wechat
    if value in known:
        wechat, reason = known[value]
    else:
        result = standardize_wechat(clean_text(str(value)))
        wechat, reason = (result[0] if result.status != "invalid" else ""), result.reason
    if not wechat:
        raise ValueError(f"not a valid WeChat id ({reason})")
    return wechat


class Identity(BaseModel):
    """Who the event is about: a lead id, or any contact value the store can resolve."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    lead_id: str | None = Field(None, max_length=64,
                                description="the lead id (L00000042); `subject` may carry it instead")
    mobile: str | None = Field(None, max_length=MAX_CONTACT, description="a mobile the lead is known by")
    email: str | None = Field(None, max_length=MAX_CONTACT, description="an email the lead is known by")
    wechat: str | None = Field(None, max_length=MAX_CONTACT, description="a WeChat id the lead is known by")

    @model_validator(mode="after")
    def extra_keys_bounded(self) -> Identity:
        extra = self.model_extra or {}
        if extra:
            size = len(json.dumps(extra, ensure_ascii=False, default=str))
            if size > MAX_EXTRA_DATA_CHARS:
                raise ValueError(f"unknown data keys ({', '.join(sorted(extra)[:5])}) take {size} characters; "
                                 f"at most {MAX_EXTRA_DATA_CHARS}")
        return self

    @field_validator("mobile")
    @classmethod
    def check_mobile(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _mobile(value, info)

    @field_validator("email")
    @classmethod
    def check_email(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _email(value, info)

    @field_validator("wechat")
    @classmethod
    def check_wechat(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _wechat(value, info)


class MobileChanged(Identity):
    """The person changed their mobile number (e.g. in the app), verified by SMS on one or both numbers."""

    old_mobile: str | None = Field(None, max_length=MAX_CONTACT,
                                   description="the number they had (identifies the lead too)")
    new_mobile: str = Field(..., max_length=MAX_CONTACT, description="the number they have now")
    verified: list[Literal["old_sms", "new_sms"]] = Field(
        default_factory=list, description="which numbers were confirmed by SMS code")

    @field_validator("old_mobile", "new_mobile")
    @classmethod
    def check_mobiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _mobile(value, info)


class EmailChanged(Identity):
    """The person changed their email address."""

    old_email: str | None = Field(None, max_length=MAX_CONTACT,
                                  description="the address they had (identifies the lead too)")
    new_email: str = Field(..., max_length=MAX_CONTACT, description="the address they have now")
    verified: list[Literal["old_email", "new_email"]] = Field(
        default_factory=list, description="which addresses were confirmed by a mailed code or link")

    @field_validator("old_email", "new_email")
    @classmethod
    def check_emails(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _email(value, info)


PROFILE_FIELDS = ("name", "company", "title", "address", "wechat")


class ProfileUpdated(Identity):
    """The person updated their profile; any of name, company, title, address, wechat (a `wechat` the
    store already knows also identifies the lead)."""

    name: str | None = Field(None, max_length=MAX_NAME)
    company: str | None = Field(None, max_length=MAX_COMPANY)
    title: str | None = Field(None, max_length=MAX_TITLE)
    address: str | None = Field(None, max_length=MAX_ADDRESS)

    @model_validator(mode="after")
    def something_changed(self) -> ProfileUpdated:
        if not any(getattr(self, f) for f in PROFILE_FIELDS):
            raise ValueError(f"needs at least one of {', '.join(PROFILE_FIELDS)}")
        return self


class ContactBounced(Identity):
    """A message to one of the lead's contacts bounced (mail platform, SMS gateway, call center)."""

    channel: Literal["mobile", "email"]
    value: str = Field(..., max_length=MAX_CONTACT, description="the contact that bounced (identifies the lead too)")
    reason: str = Field("", max_length=MAX_NOTE, description="e.g. 'mailbox does not exist', 'number not in service'")

    @field_validator("value")
    @classmethod
    def standard_value(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        standard = _mobile(value, info) if channel == "mobile" else _email(value, info) if channel == "email" \
            else value
        if not standard:
            raise ValueError("value is empty")
        return standard


class OwnerAssigned(Identity):
    """A salesperson took the lead (CRM, call center)."""

    owner: str = Field(..., min_length=1, max_length=MAX_OWNER, description="the salesperson, as the CRM names them")

    @field_validator("owner")
    @classmethod
    def clean_owner(cls, value: str) -> str:
        """Cleaned as `lead set owner=` and imports clean it: no control, bidi or zero-width characters."""
        owner = standardize_owner(value)
        if not owner:
            raise ValueError("owner is empty once control and invisible characters are removed")
        return owner


class LinkClicked(Identity):
    """Written by the tracking endpoint GET /t/<code>."""

    code: str = Field(..., max_length=200)
    channel: str = Field(..., max_length=200)
    utm_source: str | None = Field(None, max_length=200)
    utm_medium: str | None = Field(None, max_length=200)
    utm_campaign: str | None = Field(None, max_length=200)
    target_host: str | None = Field(None, max_length=MAX_CONTACT)
    user_agent: str | None = Field(None, max_length=MAX_NOTE)
    ip: str | None = Field(None, max_length=64)
    clicked_at: str

    @field_validator("clicked_at")
    @classmethod
    def utc_time(cls, value: str) -> str:
        return utc_text(value)


DATA_MODELS: dict[str, type[Identity]] = {
    "lead.mobile_changed": MobileChanged,
    "lead.email_changed": EmailChanged,
    "lead.profile_updated": ProfileUpdated,
    "lead.contact_bounced": ContactBounced,
    "lead.owner_assigned": OwnerAssigned,
    "link.clicked": LinkClicked,
}
EVENT_TYPES = tuple(DATA_MODELS)


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope (JSON format). Extension attributes are kept."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(..., min_length=1, max_length=200)
    source: str = Field(..., min_length=1, max_length=500)
    specversion: Literal["1.0"]
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]
    subject: str | None = Field(None, max_length=200, description="the lead id, when the sender knows it")
    time: str | None = Field(None, description="RFC 3339, any offset; stored in UTC (2026-12-07T08:16:00Z)")
    datacontenttype: str | None = Field(None, max_length=200)
    dataschema: str | None = Field(None, max_length=500)
    data: dict[str, Any]

    @field_validator("time")
    @classmethod
    def utc_time(cls, value: str | None) -> str | None:
        return None if value in (None, "") else utc_text(value)

    @model_validator(mode="after")
    def scalar_extensions(self) -> CloudEvent:
        """CloudEvents extension attributes are scalars (string, number, boolean), and short here."""
        for name, value in (self.model_extra or {}).items():
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                raise ValueError(f"extension attribute {name[:50]!r} must be a string, number or boolean")
            if isinstance(value, str) and len(value) > MAX_EXTENSION:
                raise ValueError(f"extension attribute {name[:50]!r} has {len(value)} characters; "
                                 f"at most {MAX_EXTENSION}")
            if len(name) > 50:
                raise ValueError(f"extension attribute name of {len(name)} characters; at most 50")
        return self


@dataclass
class ValidEvent:
    source: str
    event_id: str
    type: str
    subject: str | None
    time: str | None
    data: dict[str, Any]  # normalized by the type's model
    extensions: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventError:
    index: int
    event_id: str | None
    field: str
    message: str

    def describe(self) -> str:
        who = f"event {self.index}" + (f" (id {self.event_id})" if self.event_id else "")
        return f"{who}: {self.field}: {self.message}"


def _field_path(location: tuple) -> str:
    return ".".join(str(p) for p in location if not (isinstance(p, str) and p.startswith("function-"))) or "event"


def validate_events(raws: list[object], first_index: int = 0) -> list[ValidEvent | EventError]:
    """A request's events, their contact values standardized together."""
    contacts = StandardContacts.of(raws)
    return [validate_event(raw, first_index + i, contacts) for i, raw in enumerate(raws)]


def validate_event(raw: object, index: int = 0, contacts: StandardContacts | None = None) -> ValidEvent | EventError:
    """One event, checked against the envelope and its type's data schema."""
    if not isinstance(raw, dict):
        return EventError(index, None, "event", "expected a JSON object")
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        envelope = CloudEvent.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        return EventError(index, event_id, _field_path(first["loc"]), first["msg"])
    try:
        data = DATA_MODELS[envelope.type].model_validate(envelope.data, context=contacts)
    except ValidationError as err:
        first = err.errors()[0]
        return EventError(index, event_id, _field_path(("data", *first["loc"])), first["msg"])
    known = set(CloudEvent.model_fields)
    extensions = {k: v for k, v in raw.items() if k not in known}
    return ValidEvent(envelope.source, envelope.id, envelope.type, envelope.subject, envelope.time,
                      data.model_dump(mode="json", exclude_none=True), extensions)


def event_schemas() -> dict[str, Any]:
    """The published JSON schema: the envelope and, per event type, its `data`."""
    return {
        "specversion": SPEC_VERSION,
        "envelope": CloudEvent.model_json_schema(),
        "types": {name: model.model_json_schema() for name, model in DATA_MODELS.items()},
    }
