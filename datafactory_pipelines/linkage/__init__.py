"""Record linkage in DuckDB: a config-driven Fellegi–Sunter model, trained on the data, clustered without chaining."""

from datafactory_pipelines.linkage.config import LinkageConfig, load_config
from datafactory_pipelines.linkage.engine import LinkResult, link_records, link_table
from datafactory_pipelines.linkage.model import LinkModel

__all__ = ["LinkModel", "LinkResult", "LinkageConfig", "link_records", "link_table", "load_config"]
