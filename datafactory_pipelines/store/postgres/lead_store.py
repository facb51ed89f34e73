"""The production backend of the lead store: PostgreSQL (`DATAFACTORY_DB_URL=postgresql://…`).

The same class parts as the DuckDB store (store/parts/), one per concern, over a PostgreSQL session that reads
the same SQL (store/postgres/connection.py, dialect.py); what differs is here and in this package: sessions and the
writer lock (an advisory lock), the schema as migrations with the history guard, and bulk transfer through
COPY in Arrow. Readers never wait for a writer, and several processes may run changes: they take turns on
the writer lock for the part of a change that writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from datafactory_pipelines.store.console_queries import ConsoleQueries
from datafactory_pipelines.store.parts.history_writers import HistoryWriters
from datafactory_pipelines.store.parts.imports import Imports
from datafactory_pipelines.store.parts.match_reviews import MatchReviews
from datafactory_pipelines.store.parts.operator_changes import OperatorChanges
from datafactory_pipelines.store.parts.reading import Reading
from datafactory_pipelines.store.parts.trust import Trust
from datafactory_pipelines.store.postgres import migrations
from datafactory_pipelines.store.postgres.advisory_lock import AdvisoryLock
from datafactory_pipelines.store.postgres.change_path import PgChangePath
from datafactory_pipelines.store.postgres.connections import PgConnections
from datafactory_pipelines.store.postgres.lead_writes import PgLeadWrites

log = logging.getLogger(__name__)


def masked_url(url: str) -> str:
    """The URL without its password (for logs and messages)."""
    from datafactory_pipelines.store import store_label

    return store_label(url)


class _NoSearchIndex:
    marks = None


class PostgresLeadStore(HistoryWriters, Trust, PgConnections, Imports, PgChangePath, PgLeadWrites,
                        Reading, OperatorChanges, MatchReviews, ConsoleQueries):
    def __init__(self, url: str, side_dir: Path) -> None:
        self.url = url
        self.path = Path(side_dir)  # the folder of this host's side files (dispatcher journal, markers)
        self.path.mkdir(parents=True, exist_ok=True)
        self._init_connections()
        self._writer_lock = AdvisoryLock.of(url, self.path)
        con = self._connect()
        try:
            applied = migrations.migrate(con)
        finally:
            con.close()
        if applied:
            log.info("lead store on %s: migrations %s applied", masked_url(url), applied)

    @staticmethod
    def _leads_by_id_sql(select: str) -> str:
        """PostgreSQL: the unique index on lead_id finds the rows."""
        return f"SELECT {select} FROM leads WHERE lead_id IN (SELECT lead_id FROM wanted) ORDER BY lead_id"

    # -- the console's search: PostgreSQL reads the store itself (no DuckDB side index beside a database) --
    def build_search_index(self) -> dict[str, int]:
        return {"keys": 0, "record_id": 0, "seq": 0}

    def search_index_lag(self) -> dict[str, int] | None:
        return {"records": 0, "history": 0, "leads": 0}

    def _search_index(self) -> _NoSearchIndex:
        return _NoSearchIndex()

    @property
    def label(self) -> str:
        """The store for messages: its URL without the password."""
        return masked_url(self.url)

    @property
    def location(self) -> str:
        """What `open_store` opens this store by: its URL."""
        return self.url

    def __repr__(self) -> str:
        return f"PostgresLeadStore({masked_url(self.url)!r})"
