"""SQL generated from the linkage config and run in DuckDB: prepare, block, compare."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from datafactory_pipelines.linkage.config import LinkageConfig

SEPARATOR = "\x1f"


def prepare(con: duckdb.DuckDBPyConnection, table: pd.DataFrame | pa.Table, config: LinkageConfig,
            stats: pd.DataFrame | None = None, counts: bool = True) -> int:
    """Load the records as `recs` with a dense internal id `_id`, '' as NULL, derived columns and key stats.

    stats: the counts over the whole store (col, value, n_records, n_names) for the values these records
    carry; without it the counts are taken over the records themselves (a full link).
    counts=False: the derived columns only (what the link values of new records need), no counts.
    Two statements: the derived columns (config.prepare, in order, each seeing the ones before), then
    the counts joined on.
    """
    frame, columns, text_columns = _input_records(table)
    con.register("input_records", frame)
    select = ", ".join(
        f"nullif(trim(CAST({_q(c)} AS VARCHAR)), '') AS {_q(c)}" if c in text_columns else _q(c) for c in columns
    )
    steps = [f"SELECT _id, {select} FROM input_records"]
    for column, expression in config.prepare.items():
        if column in columns:  # replaced in place, keeping a text column text
            value = f"CAST(({expression}) AS VARCHAR)" if column in text_columns else f"({expression})"
            steps.append(f"SELECT * REPLACE ({value} AS {_q(column)}) FROM step{len(steps) - 1}")
        else:
            steps.append(f"SELECT *, CAST(({expression}) AS VARCHAR) AS {_q(column)} FROM step{len(steps) - 1}")
            columns.append(column)
    chain = ", ".join(f"step{i} AS ({step})" for i, step in enumerate(steps))
    total = frame.num_rows if isinstance(frame, pa.Table) else len(frame)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {'recs_prepared' if counts else 'recs'} AS "
                f"WITH {chain} SELECT * FROM step{len(steps) - 1}")
    con.unregister("input_records")
    if not counts:
        return total
    if stats is not None:
        con.register("store_stats_df", stats[["col", "value", "n_records", "n_names"]])
        con.execute("CREATE OR REPLACE TEMP TABLE store_stats AS SELECT * FROM store_stats_df")
        con.unregister("store_stats_df")
    joins, counted = [], []
    for kind, column in [("names", c) for c in config.key_stats] + [("tf", c) for c in tf_columns(config)]:
        alias = f"c{len(joins)}"
        if stats is not None:  # the store's counts, by the value as text
            measure = "n_names" if kind == "names" else "n_records"
            source = (f"SELECT value AS v, max({measure}) AS n FROM store_stats WHERE col = '{column}' "
                      "GROUP BY value")
            on = f"{alias}.v = CAST(p.{_q(column)} AS VARCHAR)"
        else:  # counted over these records
            if kind == "names" and config.names_column:
                partial = "NOT coalesce(name_partial, false)" if "name_partial" in columns else "true"
                measure = f"count(DISTINCT {_q(config.names_column)}) FILTER (WHERE {partial})"
            else:
                measure = "1" if kind == "names" else "count(*)"
            source = (f"SELECT {_q(column)} AS v, {measure} AS n FROM recs_prepared "
                      f"WHERE {_q(column)} IS NOT NULL GROUP BY 1")
            on = f"{alias}.v = p.{_q(column)}"
        joins.append(f"LEFT JOIN ({source}) {alias} ON {on}")
        kind_type = "BIGINT" if kind == "names" else "DOUBLE"
        counted.append(f"CAST({alias}.n AS {kind_type}) AS {_q(column + '__' + kind)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE recs AS SELECT p.*{''.join(', ' + c for c in counted)} "
                f"FROM recs_prepared p {' '.join(joins)}")
    con.execute("DROP TABLE recs_prepared")
    return total


def _input_records(table: pd.DataFrame | pa.Table) -> tuple[pd.DataFrame | pa.Table, list[str], set[str]]:
    """The records with a dense `_id` (row position), their columns and which of them are text.
    An Arrow table (a full pass reads the store's columns as Arrow) goes to DuckDB without a copy."""
    if isinstance(table, pa.Table):
        frame = table.append_column("_id", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        text = {f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                or pa.types.is_null(f.type)}
        return frame, list(table.column_names), text
    frame = table.reset_index(drop=True).assign(_id=np.arange(len(table), dtype=np.int64))
    columns = [c for c in frame.columns if c != "_id"]
    return frame, columns, {c for c in columns if frame[c].dtype == object}


def rule_name(rule: list[str]) -> str:
    """The name a blocking rule's key goes by among the store's link values."""
    return " + ".join(rule)


def rule_key(rule: list[str]) -> str:
    return f" || '{SEPARATOR}' || ".join(f"CAST(({expr}) AS VARCHAR)" for expr in rule)


def value_columns(config: LinkageConfig) -> dict[str, tuple[str, str]]:
    """Every value linking counts or blocks on: name -> (SQL over recs, NOT NULL condition).

    Term-frequency and key-stat columns by their column name; each blocking rule by its rule name
    (a one-column rule is that column's values).
    """
    out: dict[str, tuple[str, str]] = {}
    for column in sorted(set(tf_columns(config)) | set(config.key_stats)):
        out[column] = (f"CAST({_q(column)} AS VARCHAR)", f"{_q(column)} IS NOT NULL")
    for rule in config.blocking:
        out.setdefault(rule_name(rule), (rule_key(rule), " AND ".join(f"({expr}) IS NOT NULL" for expr in rule)))
    return out


def link_values_sql(config: LinkageConfig) -> str:
    """SELECT record id, col, value, surname.

    The surname (of a full name) is kept for the key-stat columns only, where linking counts the names
    that carry a value; every other value counts records alone, so it carries none (and the store keeps
    no per-surname counts for it).
    """
    names = config.names_column
    surname = (f"CASE WHEN NOT coalesce(name_partial, false) THEN CAST({_q(names)} AS VARCHAR) END"
               if names else "NULL")
    parts = [f"SELECT {_q(config.unique_id)} AS record_id, '{name}' AS col, {expr} AS value, "
             f"{surname if name in config.key_stats else 'CAST(NULL AS VARCHAR)'} AS surname "
             f"FROM recs WHERE {not_null}" for name, (expr, not_null) in value_columns(config).items()]
    return " UNION ALL ".join(parts)


def tf_columns(config: LinkageConfig) -> list[str]:
    return sorted({lvl.tf for comp in config.comparisons for lvl in comp.levels if lvl.tf})


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def block_pairs(con: duckdb.DuckDBPyConnection, config: LinkageConfig, only_new_from: int | None = None,
                within: str | None = None, sizes: str | None = None) -> dict:
    """Candidate pairs (table `pairs`: _l < _r) from all blocking rules; big blocks are skipped.

    only_new_from: keep only pairs with at least one record whose _id >= this (incremental linking).
    within: a table of _ids; keep only pairs with both records in it. Block sizes always count all
    records, so a pair is a candidate in a partial run exactly when it is one in a full run.
    sizes: a table (col, value, n_records) with the block sizes over the whole store, when `recs` holds
    only part of it.
    """
    con.execute("CREATE OR REPLACE TEMP TABLE pairs (_l BIGINT, _r BIGINT)")
    stats = {"rules": [], "skipped_blocks": 0, "largest_blocks": []}
    cross = (f"AND a.{_q(config.source_column)} <> b.{_q(config.source_column)}"
             if config.link_type == "link_only" else "")
    for rule in config.blocking:
        key = rule_key(rule)
        not_null = " AND ".join(f"({expr}) IS NOT NULL" for expr in rule)
        con.execute(f"CREATE OR REPLACE TEMP TABLE bk AS SELECT _id, {key} AS k FROM recs WHERE {not_null}")
        if sizes:
            con.execute(f"""CREATE OR REPLACE TEMP TABLE block_sizes AS SELECT value AS k, n_records AS n
                FROM {sizes} WHERE col = '{rule_name(rule)}' AND value IN (SELECT k FROM bk)""")
        else:
            con.execute("CREATE OR REPLACE TEMP TABLE block_sizes AS SELECT k, count(*) AS n FROM bk GROUP BY k")
        largest = con.execute(
            "SELECT k, n FROM block_sizes WHERE n > 1 ORDER BY n DESC LIMIT 5").fetchall()
        skipped = con.execute(f"SELECT count(*) FROM block_sizes WHERE n > {config.max_block_size}").fetchall()[0][0]
        new_filter = f"AND (a._id >= {only_new_from} OR b._id >= {only_new_from})" if only_new_from is not None else ""
        if within:
            new_filter += f" AND a._id IN (SELECT _id FROM {within}) AND b._id IN (SELECT _id FROM {within})"
        if config.source_column:
            con.execute(f"CREATE OR REPLACE TEMP TABLE bk AS SELECT bk.*, r.{_q(config.source_column)} "
                        "FROM bk JOIN recs r USING (_id)")
        before = con.execute("SELECT count(*) FROM pairs").fetchall()[0][0]
        con.execute(f"""
            INSERT INTO pairs
            SELECT a._id, b._id FROM bk a JOIN bk b ON a.k = b.k AND a._id < b._id {cross} {new_filter}
            WHERE a.k NOT IN (SELECT k FROM block_sizes WHERE n > {config.max_block_size})""")
        after = con.execute("SELECT count(*) FROM pairs").fetchall()[0][0]
        stats["rules"].append({"rule": " + ".join(rule), "pairs": after - before})
        stats["skipped_blocks"] += skipped
        stats["largest_blocks"].extend(
            {"rule": " + ".join(rule), "block_size": n} for _, n in largest)
    con.execute("CREATE OR REPLACE TEMP TABLE pairs AS SELECT DISTINCT _l, _r FROM pairs")
    stats["largest_blocks"] = sorted(stats["largest_blocks"], key=lambda b: -b["block_size"])[:10]
    return stats


def gamma_select(config: LinkageConfig) -> str:
    parts = []
    for comp in config.comparisons:
        null = " OR ".join(f"l.{_q(c)} IS NULL OR r.{_q(c)} IS NULL" for c in comp.columns)
        whens = " ".join(
            f"WHEN {lvl.sql} THEN {len(comp.levels) - i}" for i, lvl in enumerate(comp.levels))
        parts.append(f"CAST(CASE WHEN {null} THEN -1 {whens} ELSE 0 END AS TINYINT) AS {_q('g_' + comp.name)}")
    for comp in config.comparisons:
        for lvl in comp.levels:
            if lvl.tf:
                parts.append(f"l.{_q(lvl.tf + '__tf')} AS {_q('tf_' + comp.name)}")
                break
    return ", ".join(parts)


def compare(con: duckdb.DuckDBPyConnection, config: LinkageConfig, pairs_table: str) -> pd.DataFrame:
    """Comparison vectors for the pairs in `pairs_table` (_l, _r)."""
    return con.execute(
        f"SELECT p._l, p._r, {gamma_select(config)} FROM {pairs_table} p "
        "JOIN recs l ON l._id = p._l JOIN recs r ON r._id = p._r"
    ).df()


def gamma_matrix(frame: pd.DataFrame, config: LinkageConfig) -> np.ndarray:
    return frame[[f"g_{c.name}" for c in config.comparisons]].to_numpy(dtype=np.int8)


def tf_bucket(counts: np.ndarray) -> np.ndarray:
    """A value's count, rounded to the nearest power of two on a log scale (3 -> 4, 5 -> 4, 6 -> 8), as
    term frequencies use it.

    One more record carrying a common value (a frequent name, a big company) then leaves every weight
    as it was unless the count crosses a bucket boundary (2^(k+1/2), never an integer); so a change
    re-decides only the records whose weights really moved, not every record sharing a name with it.
    Rounding in log is unbiased: an agreeing value's weight moves by at most half a bit either way.
    (Rounding up, as before, weakened every agreeing value by up to a bit: 1M yardstick F1 0.9904
    against 0.9910 this way, 0.9907 with exact counts.)
    """
    counts = np.asarray(counts, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, np.exp2(np.round(np.log2(np.maximum(counts, 1)))), counts)


def tf_inputs(frame: pd.DataFrame, config: LinkageConfig, population: int) -> dict[int, tuple[int, np.ndarray]]:
    """Per comparison with a term-frequency level: (its gamma value, the frequency of each pair's value).

    Frequencies are counts (rounded to a power of two, see tf_bucket) over `population`: at least
    the number of records the model was trained on, so a value seen twice in a small first import
    does not look common.
    """
    tf = {}
    for k, comp in enumerate(config.comparisons):
        for i, lvl in enumerate(comp.levels):
            if lvl.tf and f"tf_{comp.name}" in frame.columns:
                tf[k] = (len(comp.levels) - i, tf_bucket(frame[f"tf_{comp.name}"].to_numpy(dtype=float)) / population)
                break
    return tf
