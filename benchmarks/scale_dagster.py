"""The Dagster half of `benchmarks/scale.py`, each step run in its own process as the daemon would.

    python benchmarks/scale_dagster.py sensor OUT.json   # evaluate the inbox sensor once, keep its run request
    python benchmarks/scale_dagster.py stats TAG_VALUE   # that run's stats and the timings it logged

Both use the on-disk instance in $DAGSTER_HOME and the data folder in $DATAFACTORY_HOME. Between them
`scale.py` executes the requested `import_lead_file` run with the `dagster` CLI (`dagster job execute`).
"""

from __future__ import annotations

import json
import sys
import time

import dagster as dg

from assets.resources import LeadStoreResource
from sensors.inbox import inbox_sensor

BENCH_TAG = "datafactory/benchmark"  # scale.py marks the run it executes with this tag
# what the run logs about its own phases (assets/imports.py, assets/leads.py)
PHASE_LINES = ("read and standardized", "saved as", " path: ")


def evaluate_sensor(out: str) -> int:
    """One tick of the inbox sensor against the instance; its partitions added as the daemon would."""
    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"lead_store": LeadStoreResource()})
        result = inbox_sensor(context)
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    requests = [{"job": r.job_name, "partition": r.partition_key, "run_config": r.run_config,
                 "tags": {**r.tags, **({"dagster/partition": r.partition_key} if r.partition_key else {})}}
                for r in result.run_requests or []]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"seconds": time.perf_counter() - started, "requests": requests}, f, ensure_ascii=False)
    return 0 if requests else 1


def run_stats(tag_value: str) -> int:
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={BENCH_TAG: tag_value}), limit=1)
        if not runs:
            print(json.dumps({"status": "missing"}))
            return 1
        run = runs[0]
        stats = instance.get_run_stats(run.run_id)
        lines = [entry.user_message for entry in instance.all_logs(run.run_id)
                 if entry.user_message and any(key in entry.user_message for key in PHASE_LINES)
                 and not entry.dagster_event]
    print(json.dumps({"status": run.status.value, "run_id": run.run_id, "start": stats.start_time,
                      "end": stats.end_time, "phase_log": lines}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    action, argument = sys.argv[1], sys.argv[2]
    raise SystemExit(evaluate_sensor(argument) if action == "sensor" else run_stats(argument))
