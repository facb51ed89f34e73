"""Event types other systems send (CloudEvents 1.0), each with a schema of its `data`.

The models are the one definition: ingress validates with them, `GET /events/schema` publishes
their JSON schema, and rules read the normalized data they produce (contacts standardized, so a
mobile sent as "+86 139-0013-9000" matches the store's 13900139000).
"""

from __future__ import annotations

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

from datafactory_pipelines.standardize.email import standardize_email
from datafactory_pipelines.standardize.ids import standardize_wechat
from datafactory_pipelines.standardize.phone import standardize_phone
from datafactory_pipelines.standardize.text import clean_text

SPEC_VERSION = "1.0"


def _mobile(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    result = standardize_phone(clean_text(str(value)))
    if not result.mobile:
        raise ValueError("not a valid CN mobile number")
    return result.mobile


def _email(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    result = standardize_email(clean_text(str(value)))
    if result.status == "invalid" or not result[0]:
        raise ValueError(f"not a valid email address ({result.reason})")
    return result[0]


def _wechat(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    result = standardize_wechat(clean_text(str(value)))
    if result.status == "invalid" or not result[0]:
        raise ValueError(f"not a valid WeChat id ({result.reason})")
    return result[0]


class Identity(BaseModel):
    """Who the event is about: a lead id, or any contact value the store can resolve."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    lead_id: str | None = Field(None, description="the lead id (L00000042); `subject` may carry it instead")
    mobile: str | None = Field(None, description="a mobile the lead is known by")
    email: str | None = Field(None, description="an email the lead is known by")
    wechat: str | None = Field(None, description="a WeChat id the lead is known by")

    @field_validator("mobile")
    @classmethod
    def check_mobile(cls, value: str | None) -> str | None:
        return _mobile(value)

    @field_validator("email")
    @classmethod
    def check_email(cls, value: str | None) -> str | None:
        return _email(value)

    @field_validator("wechat")
    @classmethod
    def check_wechat(cls, value: str | None) -> str | None:
        return _wechat(value)


class MobileChanged(Identity):
    """The person changed their mobile number (e.g. in the app), verified by SMS on one or both numbers."""

    old_mobile: str | None = Field(None, description="the number they had (identifies the lead too)")
    new_mobile: str = Field(..., description="the number they have now")
    verified: list[Literal["old_sms", "new_sms"]] = Field(
        default_factory=list, description="which numbers were confirmed by SMS code")

    @field_validator("old_mobile", "new_mobile")
    @classmethod
    def check_mobiles(cls, value: str | None) -> str | None:
        return _mobile(value)


class EmailChanged(Identity):
    """The person changed their email address."""

    old_email: str | None = Field(None, description="the address they had (identifies the lead too)")
    new_email: str = Field(..., description="the address they have now")
    verified: list[Literal["old_email", "new_email"]] = Field(
        default_factory=list, description="which addresses were confirmed by a mailed code or link")

    @field_validator("old_email", "new_email")
    @classmethod
    def check_emails(cls, value: str | None) -> str | None:
        return _email(value)


PROFILE_FIELDS = ("name", "company", "title", "address", "wechat")


class ProfileUpdated(Identity):
    """The person updated their profile; any of name, company, title, address, wechat (a `wechat` the
    store already knows also identifies the lead)."""

    name: str | None = None
    company: str | None = None
    title: str | None = None
    address: str | None = None

    @model_validator(mode="after")
    def something_changed(self) -> ProfileUpdated:
        if not any(getattr(self, f) for f in PROFILE_FIELDS):
            raise ValueError(f"needs at least one of {', '.join(PROFILE_FIELDS)}")
        return self


class ContactBounced(Identity):
    """A message to one of the lead's contacts bounced (mail platform, SMS gateway, call center)."""

    channel: Literal["mobile", "email"]
    value: str = Field(..., description="the contact that bounced (identifies the lead too)")
    reason: str = Field("", description="e.g. 'mailbox does not exist', 'number not in service'")

    @field_validator("value")
    @classmethod
    def standard_value(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        standard = _mobile(value) if channel == "mobile" else _email(value) if channel == "email" else value
        if not standard:
            raise ValueError("value is empty")
        return standard


class OwnerAssigned(Identity):
    """A salesperson took the lead (CRM, call center)."""

    owner: str = Field(..., min_length=1, description="the salesperson, as the CRM names them")


class LinkClicked(Identity):
    """Written by the tracking endpoint GET /t/<code>."""

    code: str
    channel: str
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    target_host: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    clicked_at: str


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
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: dict[str, Any]


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


def validate_event(raw: object, index: int = 0) -> ValidEvent | EventError:
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
        data = DATA_MODELS[envelope.type].model_validate(envelope.data)
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
