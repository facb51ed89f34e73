"""Several processes writing one PostgreSQL lead store at once: nothing twice, nothing lost, the chain linear.

Real `datafactory` processes with DATAFACTORY_DB_URL, started together: the writer lock (an advisory lock,
store/postgres/advisory_lock.py) makes whole changes take turns, and each change checks what is already
there inside its own transaction.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

from datafactory_pipelines.sample_data import write_sample_files
from tests.pg_processes import Home, history_verified, new_database, rows, scalar

APP = "https://app.example.com"


def test_processes_racing_on_one_dropped_file_import_it_once(pg_admin_url: str, tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=300, records=600, files=1, seed=51)
    dropped = sample.files[0]
    again = shutil.copy(dropped, tmp_path / f"again-{dropped.name}")  # the same file dropped twice
    home = Home(tmp_path / "home", new_database(pg_admin_url, "race_one_file"))
    racers = [home.start("import", str(dropped)), home.start("import", str(dropped)),
              home.start("import", str(again))]
    results = [p.communicate(timeout=600) for p in racers]
    for process, (out, err) in zip(racers, results, strict=True):
        assert process.returncode == 0, out + err
    said = [out for out, _ in results]
    assert sum(": imported " in out for out in said) == 1, said
    assert sum("skipped, " in out for out in said) == 2, said

    (import_id, rows_read), = rows(home.url, "SELECT import_id, rows_read FROM imports")
    assert rows_read == 600
    assert scalar(home.url, "SELECT count(*) FROM records") == rows_read
    assert scalar(home.url, "SELECT count(*) FROM records WHERE import_id = %s", [import_id]) == rows_read
    assert scalar(home.url, "SELECT count(*) FROM link_queue") == 0
    assert history_verified(home.url) > 0


def test_two_inbox_runs_racing_on_one_dropped_file_import_it_once(pg_admin_url: str, tmp_path: Path) -> None:
    """Two `datafactory run-inbox` at once (two hosts' run workers, each with its own Dagster instance) over
    one inbox: the file is imported once and archived once, and neither run fails."""
    sample = write_sample_files(tmp_path / "files", people=200, records=400, files=1, seed=55)
    url = new_database(pg_admin_url, "race_inbox")
    inbox = tmp_path / "home" / "inbox"
    inbox.mkdir(parents=True)
    shutil.copy(sample.files[0], inbox)
    workers = [Home(tmp_path / "home", url, {"DAGSTER_HOME": str(tmp_path / f"dagster_{n}")}) for n in "ab"]
    runs = [worker.start("run-inbox") for worker in workers]
    for process in runs:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, out + err

    (import_id, rows_read), = rows(url, "SELECT import_id, rows_read FROM imports")
    assert rows_read == 400 and scalar(url, "SELECT count(*) FROM records") == rows_read
    assert scalar(url, "SELECT count(*) FROM link_queue") == 0
    assert not list(inbox.glob("*.*"))
    assert [p.name for p in (tmp_path / "home" / "processed").rglob("*.xlsx")] == [f"{import_id}.xlsx"]
    assert not (tmp_path / "home" / "rejected").exists() or not any((tmp_path / "home" / "rejected").iterdir())
    assert history_verified(url) > 0


def _events(lead_ids: list[str], count: int, prefix: str) -> tuple[Path, dict[str, str]]:
    """`count` profile updates; the title each lead must end with (the last event for it wins)."""
    lines, last = [], {}
    for i in range(count):
        lead = lead_ids[i % len(lead_ids)]
        title = f"职位 {prefix}-{i:04d}"
        lines.append(json.dumps({"specversion": "1.0", "id": f"{prefix}-{i:04d}", "source": APP,
                                 "type": "lead.profile_updated", "subject": lead,
                                 "data": {"lead_id": lead, "title": title}}, ensure_ascii=False))
        last[lead] = title
    return lines, last


def test_imports_and_1000_events_applied_at_once_all_land_exactly_once(pg_admin_url: str, tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=400, records=900, files=3, seed=53)
    base, *incoming = sample.files
    home = Home(tmp_path / "home", new_database(pg_admin_url, "race_import_events"),
                {"DATAFACTORY_TRUSTED_SOURCES": APP})
    assert home.run("import", str(base)).returncode == 0
    lead_ids = [lead for (lead,) in rows(home.url, "SELECT lead_id FROM leads WHERE status = 'active' ORDER BY 1")]
    # the events go to leads the incoming files touch too (the same people, their other records)
    lines, last_title = _events(lead_ids, 1000, "burst")
    folder = home.path / "inbox" / "events"
    folder.mkdir(parents=True)
    (folder / "burst.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    history_before = scalar(home.url, "SELECT count(*) FROM history")

    # an import and the event run start together and take turns on the writer lock; a second import starts
    # as soon as the events are applied and goes over the leads they changed (no lost update)
    begun = time.monotonic()
    processes = {"import 1": home.start("import", str(incoming[0])), "events": home.start("apply-events")}
    while not scalar(home.url, "SELECT count(*) FROM events WHERE status = 'applied'"):
        assert processes["events"].poll() in (None, 0), processes["events"].communicate()
        time.sleep(0.05)
    processes["import 2"] = home.start("import", str(incoming[1]))
    waits = []
    for name, process in processes.items():
        out, err = process.communicate(timeout=900)
        assert process.returncode == 0, out + err
        waits += [f"{name} {line.split(': ', 1)[1][:60]}" for line in err.splitlines() if "waiting for" in line]

    # every event once: applied, one history row each (its one field change), the chain linear
    assert Counter(s for (s,) in rows(home.url, "SELECT status FROM events")) == {"applied": 1000}
    per_event = Counter(cause.split()[1] for (cause,) in rows(
        home.url, "SELECT cause FROM history WHERE cause LIKE 'event burst-%'"))
    assert per_event == {f"burst-{i:04d}": 1 for i in range(1000)}
    # both imports whole: each row saved once, linked, curated
    saved = rows(home.url, "SELECT import_id, rows_read FROM imports")
    assert len(saved) == 3
    for import_id, rows_read in saved:
        assert scalar(home.url, "SELECT count(*) FROM records WHERE import_id = %s", [import_id]) == rows_read
    assert scalar(home.url, "SELECT count(*) FROM link_queue") == 0
    assert scalar(home.url, "SELECT count(*) FROM records WHERE reachable AND lead_id IS NULL "
                            "AND retired_by IS NULL") == 0
    # no lost update: an event's title stands on its lead after imports touched the lead (or on the lead
    # it was merged into, which keeps one of the titles set on the leads it took in)
    titles = dict(rows(home.url, "SELECT lead_id, title FROM leads WHERE status = 'active'"))
    merged = dict(rows(home.url, "SELECT lead_id, merged_into FROM leads WHERE status = 'merged'"))
    kept = [lead for lead in last_title if lead in titles]
    assert kept and all(titles[lead] == last_title[lead] for lead in kept)
    for lead in set(last_title) - set(kept):
        assert titles[merged[lead]] in set(last_title.values())
    assert history_verified(home.url) > history_before + 1000
    touched = scalar(home.url, "SELECT count(DISTINCT h.lead_id) FROM history h WHERE h.action IN ('import', 'merge') "
                               "AND h.lead_id = ANY(%s) AND h.seq > (SELECT max(seq) FROM history WHERE action = 'event')",
                     [list(last_title)])
    assert touched > 0, "the import after the events touched none of the leads"
    print(f"\nimport + 1000 events: {time.monotonic() - begun:.1f}s; waited: {waits}; {len(kept)} event leads active, "
          f"{len(set(last_title) - set(kept))} merged; {touched} leads touched after the events")
