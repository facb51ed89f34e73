import dagster as dg
import pandas as pd

from assets.resources import LeadStoreResource
from datafactory_pipelines.fields import CONTACT_COLUMNS
from datafactory_pipelines.store import LeadStore
from expectations.runner import validate
from expectations.suites import CURATED_LEADS_SUITE, STANDARDIZED_CONTACTS_SUITE

CONTACTS = list(CONTACT_COLUMNS)


def _blank_to_null(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for col in columns:
        frame[col] = frame[col].where(frame[col].fillna("") != "")
    return frame


def _result(outcome, rows: int, **check: object) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        **check,
        passed=outcome.success,
        metadata={
            "rows_checked": rows,
            "expectations": len(outcome.table),
            "failed_expectations": len(outcome.failed),
            "results": dg.MetadataValue.md(outcome.table.to_markdown(index=False)),
        },
    )


def contacts_check_frame(records: pd.DataFrame) -> pd.DataFrame:
    """The standardized rows plus the derived columns the suite asserts on."""
    has_contact = (records[CONTACTS].fillna("") != "").any(axis=1)
    frame = records.assign(
        reachable_has_contact=~records["reachable"].astype(bool) | has_contact,
        unreachable_has_reason=records["reachable"].astype(bool) | (records["reject_reason"].fillna("") != ""),
    )
    return _blank_to_null(frame, ["mobile", "email", "landline", "wechat", "qq"])


def leads_check_frame(leads: pd.DataFrame) -> pd.DataFrame:
    contacts = [*CONTACTS, "mobile_alternates"]
    return _blank_to_null(leads.assign(has_valid_contact=(leads[contacts].fillna("") != "").any(axis=1)),
                          ["mobile", "email", "wechat", "qq"])


STANDARDIZED_CONTACTS_CHECK = dg.AssetCheckSpec(
    "standardized_contacts_key_fields", asset="standardized_contacts", blocking=True,
    description="GX: standardized contacts match their patterns; reachability is consistent.")


def standardized_contacts_check(store: LeadStore, import_id: str) -> dg.AssetCheckResult:
    """The gate on one import, evaluated in the step that saved it (see assets/imports.py): its records,
    read back from the store by import id."""
    records = store.import_records(import_id) if import_id else pd.DataFrame()
    if records.empty:
        return dg.AssetCheckResult(check_name=STANDARDIZED_CONTACTS_CHECK.name, asset_key="standardized_contacts",
                                   passed=True, metadata={"rows_checked": 0, "note": "empty import"})
    return _result(validate(contacts_check_frame(records), STANDARDIZED_CONTACTS_SUITE, "standardized_contacts"),
                   len(records), check_name=STANDARDIZED_CONTACTS_CHECK.name, asset_key="standardized_contacts")


@dg.asset_check(asset="curated_leads", blocking=True,
                description="GX: every curated lead has a valid contact; ids and primary mobiles are unique.")
def curated_leads_key_fields(lead_store: LeadStoreResource) -> dg.AssetCheckResult:
    leads = lead_store.open().leads()
    return _result(validate(leads_check_frame(leads), CURATED_LEADS_SUITE, "curated_leads"), len(leads))


CURATED_LEADS_CHANGED_CHECK = dg.AssetCheckSpec(
    "changed_leads_key_fields", asset="curated_leads", blocking=True,
    description="GX on the leads this run curated: each has a valid contact; ids and primary mobiles are unique "
                "(checked against every active lead carrying the same primary mobile).")


def changed_leads_check(store: LeadStore, lead_ids: list[str]) -> dg.AssetCheckResult:
    """The gate on one change, evaluated in the step that curated it (see assets/leads.py): the leads it
    changed, read by id, beside every active lead sharing a primary mobile with them. Its cost follows the
    change; `curated_leads_key_fields` checks the whole table (the nightly relink)."""
    leads = store.leads_around(lead_ids)
    leads = leads[leads["status"] == "active"]
    if leads.empty:
        return dg.AssetCheckResult(check_name=CURATED_LEADS_CHANGED_CHECK.name, asset_key="curated_leads",
                                   passed=True, metadata={"rows_checked": 0, "note": "no active lead changed"})
    return _result(validate(leads_check_frame(leads), CURATED_LEADS_SUITE, "curated_leads"), len(leads),
                   check_name=CURATED_LEADS_CHANGED_CHECK.name, asset_key="curated_leads")


curated_leads_checks = [curated_leads_key_fields]
