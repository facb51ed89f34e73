"""Runs this process starts itself (`datafactory run-inbox`, `apply-events`, `demo`), made as the daemon makes
a sensor's runs and executed here as a run worker executes them.

`job.execute_in_process` makes a run without a code location: the Dagster UI's Overview timeline groups runs
by the code location and job they came from (`Run.repositoryOrigin`) and leaves out every run that has none,
so the runs the inbox and event sensors' plans started in this process never showed there. Here the run is
created with the remote origin of its job in the code location every Dagster process datafactory starts
loads (`-m datafactory_pipelines.definitions`: `datafactory ui`, `run-services`), then executed in this
process by Dagster's `execute_run`, the call a run worker makes for a launched run. The CLI still waits for
its runs and reports them; with the daemon running, the sensors launch the same jobs through the queued run
coordinator and run workers (docs/production.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.execution.job_execution_result import JobExecutionResult
from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.workspace.load_target import ModuleTarget

DEFINITIONS_MODULE = "datafactory_pipelines.definitions"  # what `dagster … -m` loads (services.py, cli.py)
DEFINITIONS_ATTRIBUTE = "defs"
# the executor config that keeps a job's steps in this process (a process per step would load the code again)
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def code_location_origin() -> dg.CodeLocationOrigin:
    """The code location `dagster dev -m datafactory_pipelines.definitions` serves, named as Dagster names it."""
    return ModuleTarget(DEFINITIONS_MODULE, None, os.getcwd(), None).create_origins()[0]


def run_job_here(instance: dg.DagsterInstance, job_name: str, run_config: Mapping[str, object],
                 tags: Mapping[str, str], partition_key: str | None = None) -> JobExecutionResult:
    """Create the run with its job's origin in the code location, then execute it in this process; a failure
    is the run's (its events hold the error), not an exception here."""
    from datafactory_pipelines.definitions import defs

    job_def = defs.resolve_job_def(job_name)
    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, os.getcwd())
    job = repository.get_reconstructable_job(job_name)
    config = dict(run_config)
    if job_def.executor_def is dg.multi_or_in_process_executor and "execution" not in config:
        config.update(IN_PROCESS)
    run = instance.create_run_for_job(
        job_def=job_def, run_config=config,
        tags=merge_run_tags(job_def, partition_key, tags, None, instance, config),
        remote_job_origin=RemoteJobOrigin(
            RemoteRepositoryOrigin(code_location_origin(), defs.get_repository_def().name), job_name),
        job_code_origin=job.get_python_origin())
    return execute_run(job, run, instance)
