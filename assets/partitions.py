import dagster as dg

# One partition per dropped file; the key is the file's import id (name stem + content hash).
lead_files = dg.DynamicPartitionsDefinition(name="lead_files")

# Runs that write the lead store carry this tag; DAGSTER_HOME/dagster.yaml limits it to one at a time,
# because a DuckDB file has one writer.
LEAD_STORE_TAG = {"datafactory/lead_store": "write"}
