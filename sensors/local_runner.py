"""Process the inbox once on a real Dagster instance, in this process.

Used by `datafactory demo` and `datafactory run-inbox`: the same plan as the inbox sensor and the same
jobs as the daemon runs, so the runs, partitions and materializations appear in `dagster dev` afterwards.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.execution.job_execution_result import JobExecutionResult

from assets.resources import LeadStoreResource
from sensors.inbox import InboxPlan, failure_reason, max_attempts, plan_inbox
from sensors.launched_runs import run_job_here

SENSOR_NAME_TAG = "dagster/sensor_name"  # what the Dagster UI reads to show who launched a run
LAUNCHED_BY_TAG = "datafactory/launched_by"


@dataclass
class RunSummary:
    partition_key: str
    success: bool
    error: str
    status: str = ""  # imported | duplicate | applied | rejected | failed (will be retried)
    file: str = ""  # the dropped file's name


@dataclass
class InboxReport:
    runs: list[RunSummary] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)  # rejected before any run (type, attempts used up)
    ignored: list[tuple[str, str]] = field(default_factory=list)
    waiting: dict[str, str] = field(default_factory=dict)


def _path(request: dg.RunRequest) -> str:
    ops = request.run_config.get("ops", {})
    return next((op["config"].get("path", "") for op in ops.values() if "config" in op), "")


def _status(run: JobExecutionResult, request: dg.RunRequest) -> str:
    if not run.success:  # a file its run could not use is in rejected/; one still in the inbox is tried again
        return "failed" if _path(request) and Path(_path(request)).exists() else "rejected"
    if request.job_name == "apply_operator_workbook":
        return "applied"
    for event in run.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key == dg.AssetKey("standardized_contacts"):
            status = materialization.metadata.get("import_status")
            if status is not None and str(status.value).startswith("duplicate"):
                return "duplicate"
    return "imported"


def _merge(report: InboxReport, plan: InboxPlan) -> None:
    report.duplicates.update(plan.duplicates)
    report.rejected.update(plan.rejected)
    report.ignored = plan.ignored
    report.waiting = plan.waiting


def process_inbox(instance: dg.DagsterInstance, progress: Callable[[str], None] = print) -> InboxReport:
    """Look at the inbox, run what it plans, and look again until nothing is left to run (a second copy of
    a file is then seen as a duplicate; a run that failed for another reason than the file is retried,
    at most DATAFACTORY_INBOX_ATTEMPTS times, then the file is rejected)."""
    paths = LeadStoreResource().paths()
    report = InboxReport()
    for _ in range(max_attempts() + 2):
        plan = plan_inbox(instance, paths)
        _merge(report, plan)
        if plan.new_partitions:
            instance.add_dynamic_partitions("lead_files", plan.new_partitions)
        if not plan.run_requests:
            break
        for i, request in enumerate(plan.run_requests, start=1):
            job_name = request.job_name or "import_lead_file"
            progress(f"[{i}/{len(plan.run_requests)}] {job_name}: "
                     f"{request.partition_key or request.tags.get('datafactory/workbook')} …")
            # made as the daemon makes the sensor's runs (the Overview timeline shows them), executed here;
            # the console shows our one-line summary; the full error, with its trace, stays in the run's events
            run = run_job_here(
                instance, job_name, partition_key=request.partition_key,
                run_config={**request.run_config, "loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                # the plan is inbox_sensor's own (plan_inbox): the UI says so instead of "Manually launched"
                tags={**request.tags, SENSOR_NAME_TAG: "inbox_sensor", LAUNCHED_BY_TAG: "datafactory run-inbox"},
            )
            error = "" if run.success else failure_reason(instance, run.run_id)
            report.runs.append(RunSummary(request.partition_key or job_name, run.success, error,
                                          _status(run, request), Path(_path(request)).name))
    return report
