import dagster as dg
import pandas as pd

from assets.imports import standardized_contacts
from assets.metadata import preview
from assets.resources import LeadStoreResource
from datafactory_pipelines.linkage import LinkResult
from datafactory_pipelines.masking import mask_value
from datafactory_pipelines.pipeline import curate, link_all


def _shared_contacts_table(shared: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """The most shared contacts (switchboards, shared mailboxes), masked."""
    if shared.empty:
        return dg.MetadataValue.md("_none_")
    top = shared.head(10).copy()
    top["value"] = [mask_value(kind, value) for kind, value in zip(top["kind"], top["value"], strict=True)]
    return dg.MetadataValue.md(top.to_markdown(index=False))


LEAD_PREVIEW = ["lead_id", "name", "mobile", "email", "wechat", "company", "title", "record_count", "last_seen"]


@dg.asset(
    deps=[standardized_contacts],
    group_name="leads",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def entity_clusters(context: dg.AssetExecutionContext, lead_store: LeadStoreResource) -> dg.Output[LinkResult]:
    """Every reachable record in the lead store, linked: blocked on contact keys and on name + company,
    compared, and clustered. Contact keys carried by many different names (switchboards, shared
    mailboxes) are ignored as evidence."""
    records, link = link_all(lead_store.open())
    sizes = link.clusters.groupby("cluster_id").size()
    distribution = sizes.clip(upper=10).value_counts().sort_index()
    return dg.Output(
        link,
        metadata={
            "records": len(records),
            "clusters": int(sizes.size),
            "candidate_pairs": link.candidate_pairs,
            "matched_pairs": link.matched_pairs,
            "shared_contacts_ignored": link.shared_keys_ignored,
            "shared_contacts": _shared_contacts_table(link.shared_keys),
            "largest_cluster": int(sizes.max()) if sizes.size else 0,
            "cluster_sizes": dg.MetadataValue.md(
                pd.DataFrame({"records per cluster": [f"{k}+" if k == 10 else str(k) for k in distribution.index],
                              "clusters": distribution.to_numpy()}).to_markdown(index=False)),
        },
    )


@dg.asset(
    group_name="leads",
    kinds={"duckdb"},
    owners=["team:data-engineering"],
)
def curated_leads(context: dg.AssetExecutionContext, entity_clusters: LinkResult,
                  lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """One golden record per person with a stable lead_id: the most recent valid value of each field
    survives, other mobiles and emails are kept as alternates, and merged leads point to the survivor."""
    store = lead_store.open()
    records = store.records_for_linkage()
    records = records[records["record_id"].isin(entity_clusters.clusters["record_id"])]
    outcome = curate(store, records, entity_clusters)
    leads = store.leads()
    return dg.MaterializeResult(
        metadata={
            "active_leads": outcome.active_leads,
            "leads_created": outcome.changes.created,
            "leads_updated": outcome.changes.updated,
            "leads_merged": outcome.changes.merged,
            "duplicate_records": outcome.duplicates_found,
            "records_linked": outcome.records_linked,
            "preview": preview(leads.sort_values("updated_at", ascending=False), LEAD_PREVIEW),
        }
    )
