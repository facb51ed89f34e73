"""Process the inbox once on a real Dagster instance, in this process.

Used by `datafactory demo` and `datafactory run-inbox`: the same sensor and job as the daemon runs,
so the runs, partitions and materializations appear in `dagster dev` afterwards.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from assets.resources import LeadStoreResource
from sensors.inbox import inbox_sensor


@dataclass
class RunSummary:
    partition_key: str
    success: bool
    error: str


def process_inbox(instance: dg.DagsterInstance, progress: Callable[[str], None] = print) -> list[RunSummary]:
    from datafactory_pipelines.definitions import defs

    context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
    result = inbox_sensor(context)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    summaries = []
    requests = result.run_requests or []
    for i, request in enumerate(requests, start=1):
        job = defs.resolve_job_def(request.job_name or "import_lead_file")
        progress(f"[{i}/{len(requests)}] {job.name}: {request.partition_key or request.tags.get('datafactory/workbook')} …")
        run = job.execute_in_process(
            instance=instance, partition_key=request.partition_key,
            run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            tags=request.tags, raise_on_error=False,
        )
        error = ""
        if not run.success:
            failure = next((e for e in run.all_events if e.event_type_value == "STEP_FAILURE"), None)
            data = failure.event_specific_data if failure else None
            error = getattr(data, "user_failure_data", None) and data.user_failure_data.description or (
                data.error.message.strip().splitlines()[-1] if data and data.error else "run failed")
        summaries.append(RunSummary(request.partition_key or job.name, run.success, error))
    return summaries
