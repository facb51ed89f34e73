"""The Dagster UI's Overview timeline shows the runs `datafactory run-inbox` and `apply-events` start in their
own process.

Asked as the Overview page asks: its own GraphQL query (CompletedRunTimelineQuery, copied from dagster-webserver
1.13's ui-core/src/runs/useRunsForTimeline.tsx), executed by dagster_graphql (the schema the webserver serves)
over a real instance on disk and the code location `datafactory ui` loads; then the page's own rule applied
(useRunsForTimeline: a run without a repositoryOrigin is left out; a row is a job of a code location).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster_graphql.test.utils import execute_dagster_graphql

from datafactory_pipelines.config import Paths
from sensors.events import process_event_feed
from sensors.launched_runs import DEFINITIONS_MODULE
from sensors.local_runner import process_inbox
from tests.conftest import write_xlsx
from tests.event_helpers import (
    event,
    lead_by_mobile,
    request,
    running_server,
    store_with_leads,
    trust_the_app,
)

COMPLETED_RUN_TIMELINE_QUERY = """
query CompletedRunTimelineQuery($completedFilter: RunsFilter!, $limit: Int!, $cursor: String) {
  completed: runsOrError(filter: $completedFilter, limit: $limit, cursor: $cursor) {
    ... on Runs { results { id ...RunTimelineFragment } }
  }
}
fragment RunTimelineFragment on Run {
  id pipelineName externalJobSource
  tags { key value }
  repositoryOrigin { id repositoryName repositoryLocationName }
  ...RunTimeFragment
}
fragment RunTimeFragment on Run { id status creationTime startTime endTime updateTime }
"""
# the jobs of each code location and repository (the rows' links: the FutureTicksQuery's workspace part)
WORKSPACE_JOBS_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError {
  ... on RepositoryLocation { name repositories { name pipelines { name } } } } } } } }
"""
TOKEN = "timeline-token"


def _timeline_rows(context: WorkspaceProcessContext, since: float) -> dict[tuple[str, str, str], list[dict]]:
    """(location, repository, job) -> its runs, as the Overview timeline groups the finished runs since `since`."""
    result = execute_dagster_graphql(context.create_request_context(), COMPLETED_RUN_TIMELINE_QUERY, {
        "completedFilter": {"statuses": ["FAILURE", "SUCCESS", "CANCELED"], "updatedAfter": since,
                            "updatedBefore": time.time() + 60},
        "limit": 500})
    assert not result.errors, result.errors
    rows: dict[tuple[str, str, str], list[dict]] = {}
    for run in result.data["completed"]["results"]:
        origin = run["repositoryOrigin"]
        if run["startTime"] is None or not origin:  # the page's saveRunInfo leaves these out
            continue
        key = (origin["repositoryLocationName"], origin["repositoryName"], run["pipelineName"])
        rows.setdefault(key, []).append(run)
    return rows


def _workspace_jobs(context: WorkspaceProcessContext) -> set[tuple[str, str, str]]:
    result = execute_dagster_graphql(context.create_request_context(), WORKSPACE_JOBS_QUERY)
    assert not result.errors, result.errors
    return {(entry["name"], repository["name"], job["name"])
            for entry in result.data["workspaceOrError"]["locationEntries"]
            for repository in entry["locationOrLoadError"]["repositories"] for job in repository["pipelines"]}


@pytest.mark.usefixtures("datafactory_home")
def test_run_inbox_and_apply_events_runs_are_on_the_overview_timeline(
        datafactory_home: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    since = time.time() - 1
    trust_the_app(monkeypatch)
    store = store_with_leads(datafactory_home)
    lead = lead_by_mobile(store, "13800138000")
    paths = Paths.from_env().ensure()
    write_xlsx(paths.inbox / "展会.xlsx", [["姓名", "手机", "公司"], ["周杰", "13300133000", "蓝鲸科技"]])
    inbox = process_inbox(instance, progress=lambda _: None)
    assert [run.status for run in inbox.runs] == ["imported"]
    with running_server(store.path, TOKEN) as base:
        posted = request("POST", f"{base}/events", event("evt-timeline", "lead.mobile_changed", {
            "old_mobile": lead["mobile"], "new_mobile": "13600136000", "verified": ["old_sms", "new_sms"]}),
            token=TOKEN)
        assert posted.status == 202
        events = process_event_feed(instance, progress=lambda _: None)
    assert [run.success for run in events] == [True]
    started_here = {run.run_id for run in instance.get_runs()}
    assert len(started_here) == 2

    target = ModuleTarget(DEFINITIONS_MODULE, None, os.getcwd(), None)  # what `datafactory ui` serves (-m)
    with WorkspaceProcessContext(instance, target) as context:
        rows = _timeline_rows(context, since)
        jobs = _workspace_jobs(context)
    shown = {run["id"]: key for key, runs in rows.items() for run in runs}
    assert set(shown) == started_here  # every run this process started is on the timeline
    assert {key[2] for key in shown.values()} == {"import_lead_file", "apply_lead_events"}
    assert set(shown.values()) <= jobs  # each row is a job of the code location the UI serves: its link works
    sensors = {run["id"]: {t["key"]: t["value"] for t in run["tags"]}.get("dagster/sensor_name")
               for runs in rows.values() for run in runs}
    assert sorted(sensors.values()) == ["event_feed_sensor", "inbox_sensor"]  # "launched by a sensor", not by hand
    # the Runs page's code-location filter finds them too (by the hidden repository tag Dagster sets from the origin)
    labels = {f"{repository}@{location}" for location, repository, _ in shown.values()}
    assert {run.run_id for label in labels
            for run in instance.get_runs(dg.RunsFilter(tags={".dagster/repository": label}))} == started_here
