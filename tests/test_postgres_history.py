"""In PostgreSQL the database itself refuses UPDATE, DELETE and TRUNCATE on the history."""

from datetime import datetime, timezone
from importlib import resources

import pandas as pd
import psycopg2
import pytest

from datafactory_pipelines.history import GENESIS, chain, verify_chain
from tests.postgres_server import postgres_bin, postgres_server

pytestmark = pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL binaries are not installed")


def test_history_is_append_only_in_postgres() -> None:
    ddl = resources.files("datafactory_pipelines.store").joinpath("postgres_history.sql").read_text("utf-8")
    changes = pd.DataFrame({"lead_id": ["L00000001", "L00000001"], "field": ["mobile", "email"],
                            "old_value": ["", ""], "new_value": ["13700137000", "wf@qq.com"]})
    rows = chain(changes, 1, GENESIS, datetime.now(timezone.utc).replace(tzinfo=None), "create", "ops", "import-1")
    with postgres_server() as url:
        con = psycopg2.connect(url)
        con.autocommit = True
        cur = con.cursor()
        cur.execute(ddl)
        for row in rows.itertuples(index=False):
            cur.execute("INSERT INTO history VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        [int(row.seq), row.changed_at.to_pydatetime() if hasattr(row.changed_at, "to_pydatetime")
                         else row.changed_at, row.lead_id, row.field, row.old_value, row.new_value, row.action,
                         row.actor, row.cause, row.prev_hash, row.hash])
        for statement in ("UPDATE history SET new_value = '13800000000' WHERE seq = 1",
                          "DELETE FROM history WHERE seq = 2", "TRUNCATE history"):
            with pytest.raises(psycopg2.Error, match="history is append-only"):
                cur.execute(statement)
        records, columns = _fetch(cur)
        stored = pd.DataFrame(records, columns=columns)
        assert verify_chain(stored).ok and len(stored) == 2
        con.close()


def _fetch(cur) -> tuple[list, list]:
    cur.execute("SELECT * FROM history ORDER BY seq")
    return cur.fetchall(), [d[0] for d in cur.description]
