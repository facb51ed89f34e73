"""Dagster wiring for the lead pipeline: thin assets over the domain library."""
