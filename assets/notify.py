import dagster as dg

from assets.partitions import LEAD_STORE_TAG
from assets.resources import LeadStoreResource
from datafactory_pipelines.notify.config import load_notify_config
from datafactory_pipelines.notify.delivery import deliver_due, queue_status


class DeliverConfig(dg.Config):
    limit: int = 500  # at most this many delivery attempts in one run


@dg.asset(
    group_name="notifications",
    kinds={"webhook", "email"},
    owners=["team:data-engineering"],
)
def notification_deliveries(context: dg.AssetExecutionContext, config: DeliverConfig,
                            lead_store: LeadStoreResource) -> dg.MaterializeResult:
    """Owner notifications delivered from the outbox: each new message routed to the webhooks and mail
    addresses of $DATAFACTORY_HOME/notify.yaml that serve its owner, then every due delivery attempted once
    (Standard Webhooks signatures, Svix-like retries, 410 disables, dead letters). Counts only: no
    personal data in the metadata."""
    store = lead_store.open()
    report = deliver_due(store, load_notify_config(lead_store.paths().home), limit=config.limit)
    status = queue_status(store)
    if report.failed or report.dead:
        context.log.warning(f"{report.failed} delivery(ies) will be retried, {report.dead} dead-lettered "
                            "(datafactory notify status)")
    return dg.MaterializeResult(metadata={
        **report.as_metadata(),
        "outbox_messages": status.messages,
        "deliveries_by_status": dg.MetadataValue.json(status.by_status),
        "dead_letters": status.by_status.get("dead", 0),
        "disabled_endpoints": ", ".join(status.disabled["endpoint"]) if len(status.disabled) else "",
    })


deliver_notifications = dg.define_asset_job(
    "deliver_notifications",
    selection=[notification_deliveries],
    description="Deliver the owner notifications that are due (requested by outbox_sensor).",
    tags=LEAD_STORE_TAG,
    # one step: a second process for it cost ~3 s of every run (the dispatcher's fallback path)
    executor_def=dg.in_process_executor,
)
