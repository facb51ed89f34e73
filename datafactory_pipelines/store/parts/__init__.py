"""The class parts both lead stores are put together from (DuckDB's and PostgreSQL's), one module per concern.

Each part runs the same SQL text on both backends through the store's connection helpers
(store/sessions.py); a backend subclasses a part only where its dialect must differ (store/postgres/).
"""
