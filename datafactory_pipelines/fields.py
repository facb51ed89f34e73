"""The field vocabulary: every lead field and column, defined once.

The store's DDL, the readers, standardization, survivorship, conflicts, masking, history, export and
the CLI read their lists from here. Adding a field is one line in ``FIELDS`` (its place in the list is
its place in the leads table and in exports); e.g. ``Field("owner", "attribute", tracked=True,
editable=True, label="负责人")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["contact", "identity", "attribute", "bookkeeping"]
MaskKind = Literal["", "digits", "email", "name", "address"]


@dataclass(frozen=True)
class Field:
    """One column of the lead vocabulary.

    name: the column (in the leads table; for input fields also `<name>_raw` and `<name>` in records).
    kind: contact (reaches the person), identity (who it is), attribute (about them), bookkeeping.
    input: operators' files carry it (read, kept raw, standardized).
    lead: a column of the golden lead (False for input-only fields such as collected_at).
    personal: personal data; masked (by `mask`) before it reaches logs, run metadata or messages.
    rule: the survivorship rule key (`survivorship.yaml: fields`), for fields chosen by a rule.
    tracked: every change is written to the history.
    editable: operators may set it (`lead set`, decisions) and conflicts may hold it.
    exported: part of `export leads`.
    content: part of the lead's content hash (a change to it is a change to the lead).
    of: the field this column belongs to (mobile_alternates -> mobile).
    sql_type: column type in the leads table.
    label: what operators' workbooks call it.
    """

    name: str
    kind: Kind
    input: bool = False
    lead: bool = True
    personal: bool = False
    mask: MaskKind = ""
    rule: str = ""
    tracked: bool = False
    editable: bool = False
    exported: bool = True
    content: bool = True
    of: str = ""
    sql_type: str = "VARCHAR"
    label: str = ""


_PHONE = {"personal": True, "mask": "digits"}

# In leads-table order (the content hash reads it in this order: append new fields, do not reorder).
FIELDS: tuple[Field, ...] = (
    Field("lead_id", "bookkeeping", content=False),
    Field("name", "identity", input=True, personal=True, mask="name", rule="name", tracked=True, editable=True,
          label="姓名"),
    Field("salutation", "identity", of="name", exported=False),
    Field("mobile", "contact", input=True, rule="mobile", tracked=True, editable=True, label="手机", **_PHONE),
    Field("mobile_alternates", "contact", of="mobile", tracked=True, **_PHONE),
    Field("mobile_suspected_typos", "contact", of="mobile", **_PHONE),
    Field("landline", "contact", rule="landline", tracked=True, editable=True, label="座机", **_PHONE),
    Field("email", "contact", input=True, personal=True, mask="email", rule="email", tracked=True, editable=True,
          label="邮箱"),
    Field("email_alternates", "contact", of="email", personal=True, mask="email", tracked=True),
    Field("wechat", "contact", input=True, rule="wechat", tracked=True, editable=True, label="微信", **_PHONE),
    Field("qq", "contact", input=True, rule="qq", tracked=True, editable=True, label="QQ", **_PHONE),
    Field("douyin", "contact", input=True, rule="douyin", tracked=True, editable=True, label="抖音", **_PHONE),
    Field("kuaishou", "contact", input=True, rule="kuaishou", tracked=True, editable=True, label="快手", **_PHONE),
    Field("company", "attribute", input=True, rule="company", tracked=True, editable=True, label="公司"),
    Field("title", "attribute", input=True, rule="title", tracked=True, editable=True, label="职位"),
    Field("address", "attribute", input=True, personal=True, mask="address", rule="address", tracked=True,
          editable=True, label="地址"),
    Field("province", "attribute", of="address"),
    Field("city", "attribute", of="address"),
    Field("district", "attribute", of="address"),
    Field("landline_type", "contact", of="landline", exported=True),
    Field("source", "attribute", input=True, tracked=True, label="来源"),
    Field("collected_at", "attribute", input=True, lead=False),
    Field("first_seen", "bookkeeping"),
    Field("last_seen", "bookkeeping"),
    Field("record_count", "bookkeeping", sql_type="BIGINT"),
    Field("status", "bookkeeping", tracked=True, exported=False, content=False),
    Field("merged_into", "bookkeeping", tracked=True, exported=False, content=False),
    Field("created_at", "bookkeeping", exported=False, content=False),
    Field("updated_at", "bookkeeping", content=False),
    Field("content_hash", "bookkeeping", exported=False, content=False),
    Field("provenance", "bookkeeping", exported=False, content=False),
    # The salesperson who owns the lead (notified when it changes); not the lead's own personal data.
    Field("owner", "attribute", input=True, rule="owner", tracked=True, editable=True, label="负责人"),
    # Source attribution: the first touch (set once, never overwritten) and the latest one, from imports'
    # source column and tracking-link clicks. Not chosen by survivorship: a re-curated lead keeps them.
    Field("first_source", "attribute", tracked=True, content=False, label="首次来源"),
    Field("latest_source", "attribute", tracked=True, content=False, label="最近来源"),
    # "no reachable contact" when events (bounces) leave a lead nobody can reach: flagged, never deleted.
    Field("contact_status", "bookkeeping", tracked=True, content=False),
)

FIELD: dict[str, Field] = {f.name: f for f in FIELDS}

# Columns of operators' files, in reading order (records keep `<name>_raw` and the standardized `<name>`).
INPUT_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.input)
# Input columns that reach a person: a sheet needs one of them to be a lead list.
INPUT_CONTACT_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.input and f.kind == "contact")
# Standardized contacts (the mobile column also yields landlines): a record reaching any of them is reachable.
CONTACT_COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind == "contact" and not f.of)
LEAD_COLUMNS: list[str] = [f.name for f in FIELDS if f.lead]
LEAD_COLUMN_TYPES: dict[str, str] = {f.name: f.sql_type for f in FIELDS if f.lead}
CONTENT_FIELDS: list[str] = [f.name for f in FIELDS if f.lead and f.content and f.name != "lead_id"]
TRACKED_FIELDS: list[str] = [f.name for f in FIELDS if f.tracked]
EDITABLE_FIELDS: list[str] = [f.name for f in FIELDS if f.editable]
EXPORT_COLUMNS: list[str] = [f.name for f in FIELDS if f.lead and f.exported]
# The published read contract (the `curated_leads` view other systems read): the active leads' exported
# columns, and when each was made and whether anyone can reach it. Columns are only ever added to it.
CURATED_LEAD_COLUMNS: list[str] = [f.name for f in FIELDS
                                   if f.lead and (f.exported or f.name in ("created_at", "contact_status"))]
PERSONAL_COLUMNS: frozenset[str] = frozenset(f.name for f in FIELDS if f.personal)
MASK_OF: dict[str, MaskKind] = {f.name: f.mask for f in FIELDS if f.personal}
SURVIVORSHIP_FIELDS: dict[str, str] = {f.name: f.rule for f in FIELDS if f.rule}
FIELD_LABELS: dict[str, str] = {f.name: f.label for f in FIELDS if f.label}
# What standardization gives every record (the store's records table keeps them beside the raw values).
STANDARD_COLUMNS: list[str] = [
    "name", "name_key", "name_pinyin", "name_roman", "name_surname", "name_partial", "salutation", "name_status",
    "mobile", "mobile_alternates", "landline", "mobile_status", "mobile_reason",
    "email", "email_status", "email_reason", "email_role",
    "wechat", "wechat_status", "qq", "qq_status", "douyin", "douyin_status", "kuaishou", "kuaishou_status",
    "company", "company_key", "company_entity", "company_form", "title", "address", "province", "city", "district",
    "source", "collected_at", "reachable", "reject_reason", "owner",
]
