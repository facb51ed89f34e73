import os
import shutil

import dagster as dg

from assets.jobs import apply_operator_workbook, import_lead_file
from assets.partitions import LEAD_STORE_TAG, lead_files
from assets.resources import LeadStoreResource
from datafactory_pipelines.inbox import inbox_files, is_supported
from datafactory_pipelines.ingest.readers import SUPPORTED_SUFFIXES, file_sha256
from datafactory_pipelines.pipeline import import_id_for, reject_file
from datafactory_pipelines.workbooks import operator_workbook_kind

SHA_TAG = "datafactory/content_sha256"
IN_PROGRESS = {dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED}


def _settle_seconds() -> float:
    return float(os.environ.get("DATAFACTORY_INBOX_SETTLE_SECONDS", "2"))


@dg.sensor(
    jobs=[import_lead_file, apply_operator_workbook],
    minimum_interval_seconds=10,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches $DATAFACTORY_HOME/inbox: one partition and one run per new lead file, keyed by its content "
                "hash; filled-in conflict workbooks and edits sheets go to apply_operator_workbook.",
)
def inbox_sensor(context: dg.SensorEvaluationContext, lead_store: LeadStoreResource) -> dg.SensorResult:
    paths = lead_store.paths()
    run_requests: list[dg.RunRequest] = []
    new_partitions: list[str] = []
    for path in inbox_files(paths.inbox, _settle_seconds()):
        if not is_supported(path):
            reject_file(path, paths.rejected,
                        f"unsupported file type {path.suffix!r}; expected one of {', '.join(sorted(SUPPORTED_SUFFIXES))}")
            continue
        sha = file_sha256(path)
        partition_key = import_id_for(path.name, sha)
        earlier = context.instance.get_run_records(dg.RunsFilter(tags={SHA_TAG: sha}), limit=1)
        if earlier:
            status = earlier[0].dagster_run.status
            if status == dg.DagsterRunStatus.SUCCESS:  # the same content again: no second import
                duplicates = paths.processed / "duplicates"
                duplicates.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), duplicates / path.name)
                context.log.info(f"{path.name}: same content as an earlier import, moved to processed/duplicates")
            elif status not in IN_PROGRESS:
                context.log.warning(f"{path.name}: its import run {earlier[0].dagster_run.run_id} ended {status.value}")
            continue
        kind = operator_workbook_kind(path)
        if kind:
            run_requests.append(dg.RunRequest(
                run_key=sha, job_name="apply_operator_workbook",
                run_config={"ops": {"operator_decisions": {"config": {"path": str(path)}}}},
                tags={SHA_TAG: sha, "datafactory/workbook": kind, **LEAD_STORE_TAG},
            ))
            continue
        if not context.instance.has_dynamic_partition(lead_files.name, partition_key):
            new_partitions.append(partition_key)
        run_requests.append(
            dg.RunRequest(
                run_key=sha,
                job_name="import_lead_file",
                partition_key=partition_key,
                run_config={"ops": {"raw_imports": {"config": {"path": str(path)}}}},
                tags={SHA_TAG: sha, **LEAD_STORE_TAG},
            )
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[lead_files.build_add_request(new_partitions)] if new_partitions else [],
    )
