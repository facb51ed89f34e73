"""Reading operators' lead files: any sheet layout, any header names, any common encoding."""

from datafactory_pipelines.ingest.errors import IngestError
from datafactory_pipelines.ingest.readers import RawImport, RawSheet, read_file

__all__ = ["IngestError", "RawImport", "RawSheet", "read_file"]
