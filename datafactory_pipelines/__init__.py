"""datafactory: a data factory for CRM sales leads.

The domain library: ingest, standardize, linkage, survivorship and the lead store.
Nothing below ``definitions.py`` imports Dagster, so every step runs the same from
the Dagster assets, the ``datafactory`` CLI and the tests.
"""

from datafactory_pipelines.fields import INPUT_CONTACT_FIELDS, INPUT_FIELDS

# Kept for callers of the older names; the vocabulary lives in fields.py.
CANONICAL_FIELDS: tuple[str, ...] = INPUT_FIELDS
CONTACT_FIELDS: tuple[str, ...] = INPUT_CONTACT_FIELDS
