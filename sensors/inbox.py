"""Sensors: the drop folder.

Each settled file gets one run, keyed by its content hash (a later copy of the same content gets a run
of its own, which finds the content in the store and files the copy under processed/duplicates). A run that failed for a reason other than
the file's content (the file is still in the inbox: the store was busy, the process was killed) is
tried again with a new run key (content hash + attempt number), at most DATAFACTORY_INBOX_ATTEMPTS
times in all (default 3); then the file goes to rejected/ with the last reason. A run whose process is
gone (killed) is marked failed first.
Names the inbox ignores (Excel lock files, hidden files, unfinished downloads) are logged once each.
"""
import json
import os
from dataclasses import dataclass, field

import dagster as dg

from assets.jobs import apply_operator_workbook, import_lead_file
from assets.partitions import LEAD_STORE_TAG, RUNNER_TAG, lead_files, runner_is_gone
from assets.resources import LeadStoreResource
from datafactory_pipelines.config import Paths
from datafactory_pipelines.inbox import ignored_files, inbox_files, is_supported
from datafactory_pipelines.ingest.readers import SUPPORTED_SUFFIXES, file_sha256
from datafactory_pipelines.pipeline import file_duplicate, import_id_for, reject_file
from datafactory_pipelines.workbooks import operator_workbook_kind

SHA_TAG = "datafactory/content_sha256"
ATTEMPT_TAG = "datafactory/attempt"
IN_PROGRESS = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED}
ENDED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _settle_seconds() -> float:
    return float(os.environ.get("DATAFACTORY_INBOX_SETTLE_SECONDS", "2"))


def max_attempts() -> int:
    """How many runs one file gets before it is rejected (DATAFACTORY_INBOX_ATTEMPTS, default 3)."""
    return max(1, int(os.environ.get("DATAFACTORY_INBOX_ATTEMPTS", "3")))


@dataclass
class InboxPlan:
    """What one look at the inbox decided."""

    run_requests: list[dg.RunRequest] = field(default_factory=list)
    new_partitions: list[str] = field(default_factory=list)
    duplicates: dict[str, str] = field(default_factory=dict)  # file name -> where it was filed
    rejected: dict[str, str] = field(default_factory=dict)  # file name -> reason
    waiting: dict[str, str] = field(default_factory=dict)  # file name -> why it waits (a run in progress)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)
    notes: list[str] = field(default_factory=list)  # what a person should read in the sensor log


def failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """The last line of the error that ended a run (the step's failure, or the run's)."""
    for event_type in (dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE):
        records = instance.get_records_for_run(run_id, of_type=event_type, ascending=False, limit=1).records
        if not records or not records[0].event_log_entry.dagster_event:
            continue
        event = records[0].event_log_entry.dagster_event
        data = event.event_specific_data
        failure = getattr(data, "user_failure_data", None)
        if failure is not None and failure.description:
            return failure.description
        error = getattr(data, "error", None)
        while error is not None and error.cls_name and error.cls_name.startswith("Dagster") and error.cause:
            error = error.cause  # "Error occurred while executing op …" wraps the error that says why
        if error is not None and error.message.strip():
            return error.message.strip().splitlines()[-1]
        if event.message:
            return event.message.strip().splitlines()[-1]
    return "the run failed"


def _runs_for(instance: dg.DagsterInstance, sha: str) -> list[dg.DagsterRun]:
    """Every run made for this content, newest first; a run whose process is gone is marked failed."""
    runs = [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(tags={SHA_TAG: sha}))]
    for run in runs:
        if run.status in {dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED} and runner_is_gone(run):
            instance.report_run_failed(run, f"its process ({run.tags[RUNNER_TAG]}) is gone: killed or crashed")
    return [r.dagster_run for r in instance.get_run_records(dg.RunsFilter(tags={SHA_TAG: sha}))]


def plan_inbox(instance: dg.DagsterInstance, paths: Paths, settle_seconds: float | None = None) -> InboxPlan:
    """Decide, for every file in the inbox, to run it, retry it, file it as a duplicate, reject it or wait."""
    plan = InboxPlan(ignored=ignored_files(paths.inbox))
    planned: set[str] = set()
    for path in inbox_files(paths.inbox, _settle_seconds() if settle_seconds is None else settle_seconds):
        if not is_supported(path):
            reason = f"unsupported file type {path.suffix!r}; expected one of {', '.join(sorted(SUPPORTED_SUFFIXES))}"
            reject_file(path, paths.rejected, reason)
            plan.rejected[path.name] = reason
            continue
        sha = file_sha256(path)
        if sha in planned:  # the same content twice in one look: the first copy goes, this one waits its turn
            plan.waiting[path.name] = "the same content as another file in this batch"
            continue
        runs = _runs_for(instance, sha)
        kind = operator_workbook_kind(path)
        # a lead file's content is judged by the store (the run files a duplicate under processed/duplicates,
        # and content whose import was undone can come back); a workbook's only by its earlier run
        if kind and any(r.status == dg.DagsterRunStatus.SUCCESS for r in runs):
            target = file_duplicate(path, paths.processed)
            plan.duplicates[path.name] = str(target)
            plan.notes.append(f"{path.name}: same content as an earlier import, moved to processed/duplicates")
            continue
        if any(r.status in IN_PROGRESS for r in runs):
            plan.waiting[path.name] = "its import run is in progress"
            continue
        succeeded = [i for i, r in enumerate(runs) if r.status == dg.DagsterRunStatus.SUCCESS]
        failed = [r for r in runs[:succeeded[0]] if r.status in ENDED_BADLY] if succeeded else \
            [r for r in runs if r.status in ENDED_BADLY]  # failures since the last run that worked
        if len(failed) >= max_attempts():
            last = failure_reason(instance, failed[0].run_id)
            reason = (f"the import was tried {len(failed)} times and failed for a reason other than the file's "
                      f"content; last run {failed[0].run_id}: {last}")
            reject_file(path, paths.rejected, reason)
            plan.rejected[path.name] = reason
            plan.notes.append(f"{path.name}: rejected after {len(failed)} failed runs: {last}")
            continue
        attempt = len(runs) + 1
        if failed:
            plan.notes.append(f"{path.name}: run {failed[0].run_id} ended {failed[0].status.value} "
                              f"({failure_reason(instance, failed[0].run_id)}); attempt {attempt} of {max_attempts()}")
        planned.add(sha)
        run_key = sha if attempt == 1 else f"{sha}:attempt-{attempt}"
        tags = {SHA_TAG: sha, ATTEMPT_TAG: str(attempt), **LEAD_STORE_TAG}
        if kind:
            plan.run_requests.append(dg.RunRequest(
                run_key=run_key, job_name="apply_operator_workbook",
                run_config={"ops": {"operator_decisions": {"config": {"path": str(path)}}}},
                tags={**tags, "datafactory/workbook": kind},
            ))
            continue
        partition_key = import_id_for(path.name, sha)
        if not instance.has_dynamic_partition(lead_files.name, partition_key) and partition_key not in plan.new_partitions:
            plan.new_partitions.append(partition_key)
        plan.run_requests.append(dg.RunRequest(
            run_key=run_key, job_name="import_lead_file", partition_key=partition_key,
            run_config={"ops": {"raw_imports": {"config": {"path": str(path)}}}}, tags=tags,
        ))
    return plan


@dg.sensor(
    jobs=[import_lead_file, apply_operator_workbook],
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches $DATAFACTORY_HOME/inbox: one partition and one run per new lead file, keyed by its content "
                "hash; filled-in conflict workbooks and edits sheets go to apply_operator_workbook. A run that failed "
                "for another reason than the file is retried (new run key) a bounded number of times, then the file "
                "is rejected; content imported before goes to processed/duplicates; ignored names are logged.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, lead_store: LeadStoreResource) -> dg.SensorResult:
    plan = plan_inbox(context.instance, lead_store.paths())
    for note in plan.notes:
        context.log.info(note)
    # an ignored name is logged once (the cursor remembers it), not on every tick
    seen = set(json.loads(context.cursor or "{}").get("ignored", []))
    for name, reason in plan.ignored:
        if name not in seen:
            context.log.warning(f"{name}: not imported: {reason}")
    cursor = json.dumps({"ignored": sorted(name for name, _ in plan.ignored)}, ensure_ascii=False)
    return dg.SensorResult(
        run_requests=plan.run_requests,
        dynamic_partitions_requests=[lead_files.build_add_request(plan.new_partitions)] if plan.new_partitions else [],
        cursor=cursor,
    )

