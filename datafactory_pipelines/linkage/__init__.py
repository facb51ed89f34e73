"""Record linkage in DuckDB: block on contact keys and name+company, compare, decide, cluster."""

from datafactory_pipelines.linkage.engine import LinkResult, link_records

__all__ = ["LinkResult", "link_records"]
