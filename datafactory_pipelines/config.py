"""Where datafactory keeps its files. Everything lives under DATAFACTORY_HOME (default ./data)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    home: Path

    @classmethod
    def from_env(cls, home: str | os.PathLike[str] | None = None) -> Paths:
        return cls(Path(home or os.environ.get("DATAFACTORY_HOME") or "data").resolve())

    @property
    def store(self) -> Path | str:
        """The lead store: DATAFACTORY_DB_URL (a PostgreSQL URL) when set, else the DuckDB file in home."""
        return os.environ.get("DATAFACTORY_DB_URL") or self.home / "leads.duckdb"

    @property
    def store_files(self) -> Path:
        """What the store's side files (writer lock, change marker, the dispatcher's journal and heartbeat)
        are named after: the DuckDB file, or DATAFACTORY_HOME/leads.pg for a PostgreSQL store."""
        store = self.store
        return store if isinstance(store, Path) else self.home / "leads.pg"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def processed(self) -> Path:
        return self.home / "processed"

    @property
    def rejected(self) -> Path:
        return self.home / "rejected"

    def ensure(self) -> Paths:
        for folder in (self.home, self.inbox, self.processed, self.rejected):
            folder.mkdir(parents=True, exist_ok=True)
        return self
