import os

import dagster as dg

from datafactory_pipelines.config import Paths
from datafactory_pipelines.store import LeadStore, open_store


class LeadStoreResource(dg.ConfigurableResource):
    """The lead store and the drop folders under DATAFACTORY_HOME (default ./data)."""

    home: str = ""

    def paths(self) -> Paths:
        return Paths.from_env(self.home or os.environ.get("DATAFACTORY_HOME")).ensure()

    def open(self) -> LeadStore:
        return open_store(self.paths().store)
