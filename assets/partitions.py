import os
import socket

import dagster as dg
import pandas as pd

# One partition per dropped file; the key is the file's import id (name stem + content hash).
lead_files = dg.DynamicPartitionsDefinition(name="lead_files")

# Runs that write the lead store carry this tag; DAGSTER_HOME/dagster.yaml limits it to one at a time,
# because a DuckDB file has one writer.
LEAD_STORE_TAG = {"datafactory/lead_store": "write"}

# host:pid of the process a run executes in, so the inbox sensor can tell a killed run from a slow one
RUNNER_TAG = "datafactory/runner"


def mark_runner(context: dg.OpExecutionContext) -> None:
    context.instance.add_run_tags(context.run_id, {RUNNER_TAG: f"{socket.gethostname()}:{os.getpid()}"})


def runner_is_gone(run: dg.DagsterRun) -> bool:
    """True when the run says it executes in a process on this host that no longer exists."""
    host, _, pid = run.tags.get(RUNNER_TAG, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's run, or not started yet: Dagster's run monitoring decides
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def live_import_of(imports: pd.DataFrame, partition_key: str) -> str:
    """The partition's import still in effect: the key itself, or its re-import after an undo (`…-r2`)."""
    ids = imports.loc[imports["undone_at"].isna(), "import_id"]
    live = [i for i in ids if i == partition_key or i.startswith(f"{partition_key}-r")]
    return live[-1] if live else partition_key
