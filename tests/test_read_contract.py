"""The read contract on PostgreSQL: `curated_leads`, read from a second connection while an import runs.

Other systems (a CRM front end, a BI tool) read the view at any time. Here a reader reads it in a loop, one
statement per read on its own connection, while `datafactory import` runs in another process: every read
answers (a statement timeout would fail it; nothing waits for the import's locks) and shows the leads as
they were before the import or as they are after it, never a part of its change.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from datafactory_pipelines.fields import CURATED_LEAD_COLUMNS
from datafactory_pipelines.sample_data import write_sample_files
from datafactory_pipelines.store.postgres.advisory_lock import WRITER_KEY
from tests.pg_processes import Home, new_database, rows

#: one read: whether a writer holds the store's writer lock now, and the whole view in one snapshot
READ = ("SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND "
        "((classid::bigint << 32) | objid::bigint) = %s) AS writing, count(*), "
        "md5(coalesce(string_agg(c::text, '|' ORDER BY c.lead_id), '')) FROM curated_leads AS c")


def test_curated_leads_answers_during_an_import_with_the_state_before_or_after(pg_admin_url: str,
                                                                               tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=300, records=700, files=2, seed=61)
    base, incoming = sample.files
    home = Home(tmp_path / "home", new_database(pg_admin_url, "read_contract"))
    assert home.run("import", str(base)).returncode == 0

    with psycopg.connect(home.url, autocommit=True, application_name="crm front end") as reader:
        reader.execute("SET statement_timeout = '10s'")  # a read that waited for the import would fail here
        described = reader.execute("SELECT * FROM curated_leads LIMIT 0").description
        assert [d.name for d in described] == CURATED_LEAD_COLUMNS
        _, count_before, before = reader.execute(READ, [WRITER_KEY]).fetchone()

        importing = home.start("import", str(incoming))
        seen = []
        while importing.poll() is None:
            started = time.perf_counter()
            writing, count, digest = reader.execute(READ, [WRITER_KEY]).fetchone()
            seen.append((writing, count, digest, time.perf_counter() - started))
        out, err = importing.communicate()
        assert importing.returncode == 0, out + err
        _, count_after, after = reader.execute(READ, [WRITER_KEY]).fetchone()

    assert after != before and count_after != count_before, "the import changed no curated lead"
    during = [s for s in seen if s[0]]
    assert during, "no read happened while the import held the writer lock"
    assert {digest for _, _, digest, _ in seen} <= {before, after}
    assert {count for _, count, _, _ in seen} <= {count_before, count_after}
    # the view reads the leads only: what an import's change writes elsewhere is not part of the contract
    assert rows(home.url, "SELECT count(*) FROM curated_leads")[0][0] == count_after
    slowest = max(s[3] for s in seen)
    print(f"\ncurated_leads: {len(seen)} reads during the import ({len(during)} while it held the writer lock; "
          f"{sum(s[2] == before for s in during)} showed the state before, "
          f"{sum(s[2] == after for s in during)} after); slowest read {slowest * 1000:.0f} ms; "
          f"{count_before} -> {count_after} leads")
