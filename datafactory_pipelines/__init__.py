"""datafactory: a data factory for CRM sales leads.

The domain library: ingest, standardize, linkage, survivorship and the lead store.
Nothing below ``definitions.py`` imports Dagster, so every step runs the same from
the Dagster assets, the ``datafactory`` CLI and the tests.
"""

CANONICAL_FIELDS: tuple[str, ...] = (
    "name", "mobile", "email", "wechat", "qq", "douyin", "kuaishou",
    "company", "title", "address", "source", "collected_at", "owner",
)
CONTACT_FIELDS: tuple[str, ...] = ("mobile", "email", "wechat", "qq", "douyin", "kuaishou")
