"""kill -9 of an import, an event run and a restore on a PostgreSQL lead store, at seeded random points.

Each trial starts the real command (`datafactory import`, `apply-events`, `restore --undo-import … --yes`) in
its own process group with DATAFACTORY_DB_URL, kills the group with SIGKILL after a random delay (a share of
how long the command takes uninterrupted), waits until PostgreSQL has ended the dead client's sessions, and
then checks what is in the store:

- the whole change or none of it: the store is byte for byte what it was (every table's rows hashed), or
  the change's parts are there together (an import's row with all its records; all of an event file's
  events; an undone import with its restore row and every record retired). An import commits in two
  steps by design (each file saved, then all linked and curated: cli.cmd_import, pipeline.import_files):
  the one state between them is the import saved whole and waiting in the link queue, with no lead or
  history row changed yet;
- `verify-history`'s walk of the hash chain passes;
- rerunning the same command completes, and the store then holds exactly what an uninterrupted run gives
  (imports: the same leads, records and history as a reference store that imported the same files in
  the same order; events: each event applied once, one history row each; restores: undone once).

DATAFACTORY_FAULT_TRIALS (default 21) is the number of trials in all, shared by the three commands
(see `trials_per_command`); `.ci/run` runs a bounded number (9), a full check the default.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from datafactory_pipelines.sample_data import write_sample_files
from tests.pg_processes import (
    Home,
    history_verified,
    kill_after,
    new_database,
    rows,
    scalar,
    sessions,
    store_digest,
    wait_until_sessions_end,
)

pytestmark = pytest.mark.slow

APP = "https://app.example.com"


def trials_per_command(kind: str) -> int:
    """The command's share of DATAFACTORY_FAULT_TRIALS: an event run costs two Dagster runs a trial (about
    twice an import's time), so it gets a quarter, imports and restores the rest in halves."""
    total = max(3, int(os.environ.get("DATAFACTORY_FAULT_TRIALS", "21")))
    events = max(1, total // 4)
    imports = (total - events + 1) // 2
    return {"apply-events": events, "import": imports, "restore": total - events - imports}[kind]


def _killed_run(home: Home, args: list[str], delay: float) -> tuple[bool, dict[str, str]]:
    """Start the command, SIGKILL it after `delay` s, wait for its sessions to end; (killed?, digest)."""
    before = sessions(home.url)
    process = home.start(*args)
    killed = kill_after(process, delay)
    if not killed:
        assert process.returncode in (0, 2), f"{args} failed on its own: rc {process.returncode}"
    wait_until_sessions_end(home.url, before)
    return killed, store_digest(home.url)


def _report(kind: str, outcomes: list[tuple[float, bool, str]], seconds: float, uninterrupted: float) -> None:
    tally = Counter(state for _, _, state in outcomes)
    print(f"\n{kind} (uninterrupted {uninterrupted:.1f}s): {len(outcomes)} trials in {seconds:.1f}s "
          f"({seconds / len(outcomes):.1f}s each), "
          f"{sum(k for _, k, _ in outcomes)} killed, left: {dict(tally)}")


# -- imports ------------------------------------------------------------------------------------------

def _import_summary(url: str) -> dict:
    """What two stores that imported the same files must agree on (ids, values, counts; not timestamps)."""
    return {
        "imports": sorted(rows(url, "SELECT import_id, rows_read, undone_at IS NULL FROM imports")),
        "records": rows(url, "SELECT count(*), count(lead_id), count(retired_by) FROM records")[0],
        "leads": sorted(rows(url, "SELECT lead_id, status, name, mobile, email, company, title FROM leads")),
        "history": sorted(Counter(rows(url, "SELECT lead_id, field, new_value, action FROM history")).items(),
                          key=repr),
        "links": scalar(url, "SELECT count(*) FROM match_links"),
        "conflicts": scalar(url, "SELECT count(*) FROM conflicts WHERE status = 'open'"),
        "queue": scalar(url, "SELECT count(*) FROM link_queue"),
    }


def _reference_import(url: str, side: Path, path: Path) -> None:
    """The same file imported into the reference store, uninterrupted, as `datafactory import` does it."""
    from datafactory_pipelines.pipeline import import_file, relink_and_curate
    from datafactory_pipelines.store import open_store

    store = open_store(url, side_dir=side)
    with store.exclusive(f"reference import {path.name}"):
        assert import_file(store, path, imported_by="cli").status == "imported"
        relink_and_curate(store, actor="cli")
    store.close()


def test_kill_9_of_an_import_leaves_all_or_nothing_and_a_rerun_completes(pg_admin_url: str, tmp_path: Path) -> None:
    trials = trials_per_command("import")
    sample = write_sample_files(tmp_path / "files", people=60 * (trials + 1), records=150 * (trials + 1),
                                files=trials + 1, seed=41)
    home = Home(tmp_path / "home", new_database(pg_admin_url, "faults_import"))
    reference = new_database(pg_admin_url, "faults_import_reference")
    first, *files = sample.files

    started = time.perf_counter()
    done = home.run("import", str(first))  # the base, and how long an import takes uninterrupted
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    _reference_import(reference, tmp_path / "ref.pg", first)

    rng = random.Random(20)
    outcomes = []
    begun = time.perf_counter()
    for path in files:
        before = store_digest(home.url)
        delay = rng.uniform(0.2, 1.1) * took
        killed, after = _killed_run(home, ["import", str(path)], delay)
        history_verified(home.url)
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        saved = rows(home.url, "SELECT import_id, rows_read FROM imports WHERE content_sha256 = %s", [content])
        if after == before:
            state = "nothing"
        else:
            assert len(saved) == 1, "the store changed but the import's row is not there"
            import_id, rows_read = saved[0]
            assert scalar(home.url, "SELECT count(*) FROM records WHERE import_id = %s", [import_id]) == rows_read
            waiting = scalar(home.url, "SELECT count(DISTINCT q.record_id) FROM link_queue q JOIN records r "
                                       "USING (record_id) WHERE r.import_id = %s", [import_id])
            if after["history"] == before["history"]:
                state = "saved, waiting to link"
                assert after["leads"] == before["leads"] and waiting > 0
                assert scalar(home.url, "SELECT count(lead_id) FROM records WHERE import_id = %s", [import_id]) == 0
            else:
                state = "whole"
                assert waiting == 0
        outcomes.append((delay, killed, state))

        rerun = home.run("import", str(path))
        assert rerun.returncode == 0, rerun.stderr
        _reference_import(reference, tmp_path / "ref.pg", path)
        history_verified(home.url)
        assert _import_summary(home.url) == _import_summary(reference)
    _report("import", outcomes, time.perf_counter() - begun, took)
    verified = home.run("verify-history")
    assert verified.returncode == 0 and "history intact" in verified.stdout, verified.stdout + verified.stderr


# -- event runs ---------------------------------------------------------------------------------------

def _event_file(home: Home, trial: int, lead_ids: list[str], count: int) -> list[str]:
    """`count` profile updates (a new title each) as a JSON Lines file dropped into inbox/events/."""
    folder = home.path / "inbox" / "events"
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"trial{trial:02d}-{i:04d}" for i in range(count)]
    lines = [json.dumps({"specversion": "1.0", "id": event_id, "source": APP, "type": "lead.profile_updated",
                         "subject": lead_ids[i % len(lead_ids)],
                         "data": {"lead_id": lead_ids[i % len(lead_ids)], "title": f"职位 {event_id}"}},
                        ensure_ascii=False) for i, event_id in enumerate(ids)]
    (folder / f"trial{trial:02d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def _events_of(url: str, trial: int) -> Counter:
    return Counter(status for (status,) in rows(url, "SELECT status FROM events WHERE event_id LIKE %s",
                                                [f"trial{trial:02d}-%"]))


def _history_rows_per_event(url: str, trial: int) -> Counter:
    causes = rows(url, "SELECT cause FROM history WHERE cause LIKE %s", [f"event trial{trial:02d}-%"])
    return Counter(cause.split()[1] for (cause,) in causes)


def test_kill_9_of_an_event_run_leaves_all_or_nothing_and_a_rerun_completes(pg_admin_url: str,
                                                                            tmp_path: Path) -> None:
    trials = trials_per_command("apply-events")
    count = 300
    sample = write_sample_files(tmp_path / "files", people=400, records=500, files=1, seed=43)
    home = Home(tmp_path / "home", new_database(pg_admin_url, "faults_events"),
                {"DATAFACTORY_TRUSTED_SOURCES": APP})
    assert home.run("import", str(sample.files[0])).returncode == 0
    lead_ids = [lead for (lead,) in rows(home.url, "SELECT lead_id FROM leads WHERE status = 'active' ORDER BY 1")]

    _event_file(home, 0, lead_ids, count)
    started = time.perf_counter()
    done = home.run("apply-events")  # how long an event run takes uninterrupted
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert _events_of(home.url, 0) == {"applied": count}

    rng = random.Random(21)
    outcomes = []
    begun = time.perf_counter()
    for trial in range(1, trials + 1):
        ids = _event_file(home, trial, lead_ids, count)
        before = store_digest(home.url)
        delay = rng.uniform(0.3, 1.3) * took  # a run applies its batch at its end
        killed, after = _killed_run(home, ["apply-events"], delay)
        history_verified(home.url)
        statuses = _events_of(home.url, trial)
        if after == before:
            state = "nothing"
            assert (home.path / "inbox" / "events" / f"trial{trial:02d}.jsonl").exists()
        elif statuses == {"received": count}:
            state = "stored, waiting"
            assert after["history"] == before["history"] and after["leads"] == before["leads"]
        else:
            state = "whole"
            assert statuses == {"applied": count}, statuses
            assert _history_rows_per_event(home.url, trial) == dict.fromkeys(ids, 1)
        outcomes.append((delay, killed, state))

        rerun = home.run("apply-events")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        history_verified(home.url)
        assert _events_of(home.url, trial) == {"applied": count}
        assert _history_rows_per_event(home.url, trial) == dict.fromkeys(ids, 1)
        assert scalar(home.url, "SELECT count(*) FROM events WHERE status = 'received'") == 0
        last = {lead_ids[i % len(lead_ids)]: f"职位 {event_id}" for i, event_id in enumerate(ids)}
        titles = dict(rows(home.url, "SELECT lead_id, title FROM leads WHERE lead_id = ANY(%s)", [list(last)]))
        assert titles == last
    _report("apply-events", outcomes, time.perf_counter() - begun, took)
    verified = home.run("verify-history")
    assert verified.returncode == 0 and "history intact" in verified.stdout, verified.stdout + verified.stderr


# -- restores -----------------------------------------------------------------------------------------

def test_kill_9_of_a_restore_leaves_all_or_nothing_and_a_rerun_completes(pg_admin_url: str, tmp_path: Path) -> None:
    trials = trials_per_command("restore")
    sample = write_sample_files(tmp_path / "files", people=40 * (trials + 1), records=90 * (trials + 1),
                                files=trials + 1, seed=47)
    home = Home(tmp_path / "home", new_database(pg_admin_url, "faults_restore"))
    done = home.run("import", *map(str, sample.files))
    assert done.returncode == 0, done.stderr
    imports = [i for (i,) in rows(home.url, "SELECT import_id FROM imports ORDER BY imported_at DESC")]
    assert len(imports) == trials + 1

    started = time.perf_counter()
    done = home.run("restore", "--undo-import", imports[0], "--yes")  # how long an undo takes
    took = time.perf_counter() - started
    assert done.returncode == 0, done.stderr

    rng = random.Random(22)
    outcomes = []
    begun = time.perf_counter()
    for import_id in imports[1:]:
        before = store_digest(home.url)
        delay = rng.uniform(0.3, 1.3) * took  # an undo commits at its very end
        killed, after = _killed_run(home, ["restore", "--undo-import", import_id, "--yes"], delay)
        history_verified(home.url)
        undone = scalar(home.url, "SELECT undone_at IS NOT NULL FROM imports WHERE import_id = %s", [import_id])
        restores = scalar(home.url, "SELECT count(*) FROM restores WHERE target = %s", [import_id])
        live = scalar(home.url, "SELECT count(*) FROM records WHERE import_id = %s AND retired_by IS NULL",
                      [import_id])
        if after == before:
            state = "nothing"
            assert not undone and restores == 0
        else:
            state = "whole"
            assert undone and restores == 1 and live == 0
            assert after["history"] != before["history"]
        outcomes.append((delay, killed, state))

        rerun = home.run("restore", "--undo-import", import_id, "--yes")
        assert rerun.returncode == 0 or (rerun.returncode == 2 and "already undone" in rerun.stderr), \
            rerun.stdout + rerun.stderr
        history_verified(home.url)
        assert scalar(home.url, "SELECT undone_at IS NOT NULL FROM imports WHERE import_id = %s", [import_id])
        assert scalar(home.url, "SELECT count(*) FROM restores WHERE target = %s", [import_id]) == 1
        assert scalar(home.url, "SELECT count(*) FROM records WHERE import_id = %s AND retired_by IS NULL",
                      [import_id]) == 0
    _report("restore --undo-import", outcomes, time.perf_counter() - begun, took)
    verified = home.run("verify-history")
    assert verified.returncode == 0 and "history intact" in verified.stdout, verified.stdout + verified.stderr
