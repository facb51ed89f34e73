import dagster as dg
import numpy as np
import pandas as pd

from assets.imports import standardized_contacts
from assets.metadata import bar_chart, preview
from assets.resources import LeadStoreResource
from datafactory_pipelines.import_gate import GateFailed, reject_waiting_imports
from datafactory_pipelines.linkage import LinkResult
from datafactory_pipelines.masking import mask_value
from datafactory_pipelines.pipeline import CurateOutcome, relink_and_curate
from expectations.checks import CURATED_LEADS_CHANGED_CHECK, changed_leads_check


def _shared_contacts_table(shared: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """The most shared contacts (switchboards, shared mailboxes), masked."""
    if shared.empty:
        return dg.MetadataValue.md("_none_")
    top = shared.head(10).copy()
    top["value"] = [mask_value(kind, value) for kind, value in zip(top["kind"], top["value"], strict=True)]
    return dg.MetadataValue.md(top.to_markdown(index=False))


LEAD_PREVIEW = ["lead_id", "name", "mobile", "email", "wechat", "company", "title", "record_count", "last_seen"]


class LinkConfig(dg.Config):
    full_relink: bool = False  # relink every record, not only what new records touch
    retrain: bool = False  # learn the model's m and u again from the current data


# Both live in the lead store (records.lead_id, match_links, leads); Dagster keeps only masked metadata.
entity_clusters = dg.AssetKey("entity_clusters")
curated_leads = dg.AssetKey("curated_leads")


@dg.multi_asset(
    name="entity_clusters",
    group_name="leads",
    specs=[
        dg.AssetSpec(entity_clusters, deps=[standardized_contacts], kinds={"duckdb"},
                     owners=["team:data-engineering"],
                     description="Records linked into people: blocked on contact keys and name + company, compared "
                                 "field by field, scored with Fellegi–Sunter weights learned from the data (u from "
                                 "random pairs, m by EM, rare values counting more), and clustered without "
                                 "chaining. New records are linked incrementally; the nightly relink links "
                                 "everything with the same model."),
        dg.AssetSpec(curated_leads, deps=[entity_clusters], kinds={"duckdb"}, owners=["team:data-engineering"],
                     description="One golden record per person with a stable lead_id: the most recent valid value "
                                 "of each field survives, other mobiles and emails are kept as alternates, and "
                                 "merged leads point to the survivor."),
    ],
    check_specs=[CURATED_LEADS_CHANGED_CHECK],
)
def link_and_curate(context: dg.AssetExecutionContext, config: LinkConfig, lead_store: LeadStoreResource):
    """Link and curate in one step, from the store and into it. What is linked follows the store alone (its
    records not yet linked, or everything with `full_relink`), never the run's partition or the instance's
    partition list, so any Dagster instance pointed at the store makes the same leads."""
    store = lead_store.open()
    actor = f"dagster run {context.run_id[:8]}"
    try:
        # one transaction: the blocking gate is evaluated on what the curation wrote, before it commits
        with store.exclusive(f"link and curate ({actor})", atomic=True):
            # each phase is announced in the run's log as it starts; their durations follow in one line
            outcome = relink_and_curate(store, full=config.full_relink, retrain=config.retrain, actor=actor,
                                        progress=context.log.info)
            upserts = outcome.changes.upserts
            gate = changed_leads_check(store, [] if upserts is None else sorted(upserts["lead_id"].astype(str)))
            if not gate.passed:
                raise GateFailed(f"{CURATED_LEADS_CHANGED_CHECK.name} failed", gate)
    except GateFailed as failed:  # rolled back; the imports it curated are undone, their files rejected
        rejected = reject_waiting_imports(store, lead_store.paths(), failed.reason, by=actor)
        raise dg.Failure(description=f"{failed.reason}: nothing committed; "
                                     + ", ".join(f"{r.file_name} (import {r.import_id}) undone and moved to "
                                                 f"rejected/" for r in rejected),
                         metadata={"rejected": ", ".join(r.file_name for r in rejected)}) from None
    context.log.info(f"{outcome.path} path: " + ", ".join(f"{phase} {seconds:.2f}s"
                                                         for phase, seconds in outcome.timings.items())
                     + f"; {sum(outcome.timings.values()):.2f}s in all")
    yield dg.MaterializeResult(asset_key=entity_clusters,
                               metadata={**_link_metadata(outcome.link), **_store_totals(store.counts())})
    # the preview shows the leads this run changed (read by id), not the whole table
    yield dg.MaterializeResult(asset_key=curated_leads,
                               metadata=_curate_metadata(outcome, _changed_leads(store, outcome)))
    # the gate on this change (the leads it curated and those sharing their mobiles), as it passed before commit
    yield gate


def _changed_leads(store, outcome: CurateOutcome, limit: int = 200) -> pd.DataFrame:
    upserts = outcome.changes.upserts
    if upserts is None or upserts.empty:
        return pd.DataFrame(columns=LEAD_PREVIEW + ["updated_at"])
    return store.leads_by_id(sorted(upserts["lead_id"].astype(str))[:limit])


def _store_totals(counts: dict[str, int]) -> dict[str, object]:
    """The whole base beside this change's figures: `records`, `clusters` … count the change's neighbourhood."""
    return {
        "scope": "records/clusters/pairs: this change's neighbourhood; store_*: the whole lead store",
        "store_records": counts.get("records", 0),
        "store_reachable_records": counts.get("records", 0) - counts.get("unreachable_records", 0),
        "store_active_leads": counts.get("active_leads", 0),
        "store_merged_leads": counts.get("merged_leads", 0),
        "store_open_conflicts": counts.get("open_conflicts", 0),
    }


def _link_metadata(link: LinkResult) -> dict[str, object]:
    sizes = link.clusters.groupby("cluster_id").size()
    size_counts = sizes.clip(upper=10).value_counts().sort_index()
    weights = link.pairs["match_weight"].clip(-30, 40)
    histogram = np.histogram(weights, bins=np.arange(-30, 45, 5))[0] if len(weights) else []
    return {
        "records": len(link.clusters),
        "clusters": int(sizes.size),
        "candidate_pairs": link.candidate_pairs,
        "matched_pairs": link.matched_pairs,
        "clusters_split": link.splits,
        "largest_cluster": int(sizes.max()) if sizes.size else 0,
        "match_weight_histogram": bar_chart([f"{lo} to {lo + 5}" for lo in range(-30, 40, 5)],
                                            [int(x) for x in histogram], "match weight", "pairs"),
        "cluster_sizes": bar_chart([f"{k}+" if k == 10 else str(k) for k in size_counts.index],
                                   [int(v) for v in size_counts], "records per cluster", "clusters"),
        "largest_blocks": dg.MetadataValue.md(pd.DataFrame(link.blocking.get("largest_blocks", []))
                                              .to_markdown(index=False) or "_none_"),
        "pairs_per_blocking_rule": bar_chart([r["rule"] for r in link.blocking.get("rules", [])],
                                             [r["pairs"] for r in link.blocking.get("rules", [])],
                                             "blocking rule", "pairs"),
        "model": dg.MetadataValue.md(pd.DataFrame(link.model.describe()).round(6).to_markdown(index=False)),
        "shared_contacts_ignored": link.shared_keys_ignored,
        "shared_contacts": _shared_contacts_table(link.shared_keys),
    }


def _curate_metadata(outcome: CurateOutcome, leads: pd.DataFrame) -> dict[str, object]:
    return {
        "active_leads": outcome.active_leads,
        "leads_created": outcome.changes.created,
        "leads_updated": outcome.changes.updated,
        "leads_merged": outcome.changes.merged,
        "merges": dg.MetadataValue.md(pd.DataFrame({"retired lead": list(outcome.merges),
                                                    "merged into": list(outcome.merges.values())})
                                      .head(20).to_markdown(index=False) if outcome.merges else "_none_"),
        "lead_changes": bar_chart(["created", "updated", "merged"],
                                  [outcome.changes.created, outcome.changes.updated, outcome.changes.merged],
                                  "change", "leads"),
        "duplicate_records": outcome.duplicates_found,
        "records_linked": outcome.records_linked,
        "link_path": f"{outcome.path} ({outcome.reason})",  # incremental | full | bulk, and why
        "phase_seconds": dg.MetadataValue.json(outcome.timings),
        "preview": preview(leads.sort_values("updated_at", ascending=False), LEAD_PREVIEW),
    }
