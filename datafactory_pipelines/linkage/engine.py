"""The linkage engine: block, compare, train (u by random pairs, m by EM), score, cluster.

All pair work runs in DuckDB; the arithmetic on comparison vectors in NumPy. The model is data
(a YAML config plus learned m/u numbers), and every link keeps its per-comparison contributions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from datafactory_pipelines import duckdb_settings
from datafactory_pipelines.linkage.clustering import FORCED_WEIGHT, cluster_pairs, components
from datafactory_pipelines.linkage.config import LinkageConfig, load_config
from datafactory_pipelines.linkage.model import (
    LinkModel,
    estimate_u,
    expectation_maximisation,
    initial_model,
    match_weights,
    prior_weight,
    probability,
)
from datafactory_pipelines.linkage.review import pattern_keys, recalibrate_band
from datafactory_pipelines.linkage.sql import (
    block_pairs,
    compare,
    gamma_matrix,
    link_values_sql,
    prepare,
    rule_name,
    tf_columns,
    tf_inputs,
)

MIN_TRAINING_RECORDS = 2000  # below this, the shipped model (trained on sample leads) is used


def default_model() -> LinkModel:
    """The shipped lead model, for a store too small to learn from yet."""
    text = resources.files("datafactory_pipelines.linkage").joinpath("leads_model.json").read_text("utf-8")
    return LinkModel.from_json(text)


@dataclass
class LinkResult:
    clusters: pd.DataFrame  # record id column (config.unique_id), cluster_id (smallest id in the cluster)
    pairs: pd.DataFrame  # scored candidate pairs: id_l, id_r, match_weight, match_probability, one column per comparison
    model: LinkModel
    blocking: dict = field(default_factory=dict)
    shared_keys: pd.DataFrame = field(default_factory=pd.DataFrame)  # kind, value, n_records, n_names
    splits: int = 0  # clusters split because members contradicted each other
    relinked: np.ndarray | None = None  # record ids decided again (None: all of them)

    @property
    def candidate_pairs(self) -> int:
        return len(self.pairs)

    @property
    def matched_pairs(self) -> int:
        return int((self.pairs["match_probability"] >= self.threshold).sum()) if len(self.pairs) else 0

    threshold: float = 0.99

    @property
    def shared_keys_ignored(self) -> int:
        return len(self.shared_keys)


def train(con: duckdb.DuckDBPyConnection, config: LinkageConfig, n_records: int, sources: np.ndarray | None) -> LinkModel:
    """u from random pairs; m from EM within each training block (excluding that block's own columns)."""
    model = initial_model(config)
    rng = np.random.default_rng(config.training.seed)
    n_pairs = min(config.training.u_pairs, max(1, n_records * (n_records - 1) // 2))
    left = rng.integers(0, n_records, n_pairs)
    right = rng.integers(0, n_records, n_pairs)
    keep = left != right
    if sources is not None:
        keep &= sources[left] != sources[right]
    con.register("random_pairs_df", pd.DataFrame({"_l": left[keep], "_r": right[keep]}))
    con.execute("CREATE OR REPLACE TEMP TABLE random_pairs AS SELECT * FROM random_pairs_df")
    con.unregister("random_pairs_df")
    estimate_u(model, gamma_matrix(compare(con, config, "random_pairs"), config))

    estimates: dict[int, list[np.ndarray]] = {}
    lambdas = []
    em_records = min(n_records, config.training.em_records)
    sampled = ""
    if em_records < n_records:  # a seeded sample of records: the same model from the same records
        chosen = np.sort(rng.choice(n_records, em_records, replace=False))
        con.register("em_sample_df", pd.DataFrame({"_id": chosen.astype(np.int64)}))
        con.execute("CREATE OR REPLACE TEMP TABLE em_sample AS SELECT * FROM em_sample_df")
        con.unregister("em_sample_df")
        sampled = "AND _id IN (SELECT _id FROM em_sample)"
    for block in config.training.em_blocks:
        key = " || '\x1f' || ".join(f"CAST(({c}) AS VARCHAR)" for c in block)
        not_null = " AND ".join(f"({c}) IS NOT NULL" for c in block)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE em_pairs AS
            WITH bk AS (SELECT _id, {key} AS k FROM recs WHERE {not_null} {sampled}),
                 small AS (SELECT k FROM bk GROUP BY k HAVING count(*) <= {config.max_block_size})
            SELECT a._id AS _l, b._id AS _r FROM bk a JOIN bk b ON a.k = b.k AND a._id < b._id
            WHERE a.k IN (SELECT k FROM small) USING SAMPLE 2000000 ROWS""")
        gammas = gamma_matrix(compare(con, config, "em_pairs"), config)
        if len(gammas) == 0:
            continue
        used = {c.strip('"') for c in block}
        active = [k for k, comp in enumerate(config.comparisons) if not used & set(comp.columns)]
        m, lam = expectation_maximisation(model, gammas, active, config.training.em_iterations)
        lambdas.append((lam, len(gammas)))
        for j, k in enumerate(active):
            estimates.setdefault(k, []).append(m[j])
    for k, ms in estimates.items():
        model.m[k] = np.mean(ms, axis=0)
    # λ: matches among all pairs. Each record matches about (matches in its block) others; the blocks'
    # λ are conditional on blocking, so scale the busiest training block's matches to all pairs.
    if lambdas:
        lam, count = max(lambdas, key=lambda x: x[1])
        total_pairs = em_records * (em_records - 1) / 2  # the pairs among the records EM's blocks came from
        model.prior = float(np.clip(lam * count / total_pairs * 1.5, 1e-9, 0.5))
    model.trained_on = {"records": n_records, "u_pairs": int(keep.sum()), "em_blocks": config.training.em_blocks}
    if em_records < n_records:
        model.trained_on["em_records"] = em_records
    return model


def score_pairs(con: duckdb.DuckDBPyConnection, config: LinkageConfig, model: LinkModel,
                population: int) -> pd.DataFrame:
    """The `pairs` table scored: _l, _r, match_weight, match_probability and w_<comparison> for each."""
    scored = compare(con, config, "pairs")
    gammas = gamma_matrix(scored, config)
    weights, contributions = match_weights(model, gammas, tf_inputs(scored, config, population))
    # where people decided pairs of the middle band, their labels recalibrate it (review.py)
    weights = recalibrate_band(weights, contributions, prior_weight(model), config.recalibration,
                               config.review_from, config.review_to)
    pairs = pd.DataFrame({"_l": scored["_l"].to_numpy(), "_r": scored["_r"].to_numpy(),
                          "match_weight": weights, "match_probability": probability(weights),
                          "pattern": pattern_keys(gammas)})
    for k, comp in enumerate(config.comparisons):
        pairs[f"w_{comp.name}"] = contributions[:, k]
    return pairs


def _with_together(pairs: pd.DataFrame, together: pd.DataFrame | None) -> pd.DataFrame:
    """The scored pairs, with every pair a person decided to merge (internal _l, _r) linked whatever its score:
    scored ones raised, the others (not in one block) added."""
    if together is None or together.empty:
        return pairs
    key = pairs["_l"].astype("int64") * (1 << 32) + pairs["_r"].astype("int64")
    lo = np.minimum(together["_l"].to_numpy(), together["_r"].to_numpy()).astype("int64")
    hi = np.maximum(together["_l"].to_numpy(), together["_r"].to_numpy()).astype("int64")
    wanted = lo * (1 << 32) + hi
    hit = key.isin(wanted).to_numpy()
    pairs = pairs.copy()
    pairs.loc[hit, "match_weight"] = FORCED_WEIGHT
    pairs.loc[hit, "match_probability"] = 1.0
    missing = ~np.isin(wanted, key.to_numpy())
    if missing.any():
        extra = pd.DataFrame({"_l": lo[missing], "_r": hi[missing], "match_weight": FORCED_WEIGHT,
                              "match_probability": 1.0, "pattern": np.int64(0)})
        pairs = pd.concat([pairs, extra], ignore_index=True).fillna(0.0)
    return pairs


def _apart_ids(ids: np.ndarray, apart: pd.DataFrame | None) -> pd.DataFrame | None:
    """Record-id pairs kept apart, as internal _id pairs."""
    if apart is None or apart.empty:
        return None
    position = pd.Series(np.arange(len(ids)), index=ids)
    frame = pd.DataFrame({"_l": position.reindex(apart["id_l"]).to_numpy(),
                          "_r": position.reindex(apart["id_r"]).to_numpy()}).dropna()
    return frame.astype("int64")


def link_table(table: pd.DataFrame | pa.Table, config: LinkageConfig | None = None, model: LinkModel | None = None,
               con: duckdb.DuckDBPyConnection | None = None, apart: pd.DataFrame | None = None,
               together: pd.DataFrame | None = None) -> LinkResult:
    """Link one table (records already standardized when the config says so): a pandas frame, or an
    Arrow table (DuckDB reads it in place: a full pass over the store makes no pandas copy of it)."""
    config = config or load_config()
    own = con is None
    con = con or duckdb_settings.connect()
    try:
        ids = _column(table, config.unique_id)
        n = prepare(con, table, config)
        sources = _column(table, config.source_column).astype(str) if config.source_column else None
        blocking = block_pairs(con, config)
        if model is None:
            small_lead_table = config.standardize_leads and n < MIN_TRAINING_RECORDS
            model = default_model() if small_lead_table else train(con, config, n, sources)
        population = _population(model, n)
        pairs = _with_together(score_pairs(con, config, model, population), _apart_ids(ids, together))
        labels, splits = cluster_pairs(con, config, model, n, pairs, population, _apart_ids(ids, apart))
        shared = _shared_keys(con, config)
    finally:
        if own:
            con.close()
    clusters = pd.DataFrame({config.unique_id: ids, "cluster_id": ids[labels]})
    pairs.insert(0, "id_l", ids[pairs["_l"].to_numpy()])
    pairs.insert(1, "id_r", ids[pairs["_r"].to_numpy()])
    result = LinkResult(clusters, pairs.drop(columns=["_l", "_r"]), model, blocking, shared, splits)
    result.threshold = config.threshold
    return result


def _column(table: pd.DataFrame | pa.Table, name: str) -> np.ndarray:
    if isinstance(table, pa.Table):
        return table.column(name).to_numpy()
    return table[name].to_numpy()


def _shared_keys(con: duckdb.DuckDBPyConnection, config: LinkageConfig) -> pd.DataFrame:
    parts = []
    for column in config.key_stats:
        parts.append(con.execute(f"""
            SELECT '{column}' AS kind, "{column}" AS value, count(*) AS n_records, max("{column}__names") AS n_names
            FROM recs WHERE "{column}" IS NOT NULL GROUP BY "{column}" HAVING max("{column}__names") > 2
        """).df())
    if not parts:
        return pd.DataFrame(columns=["kind", "value", "n_records", "n_names"])
    return pd.concat(parts, ignore_index=True).sort_values("n_records", ascending=False, ignore_index=True)


def link_increment(table: pd.DataFrame, existing: np.ndarray, config: LinkageConfig, model: LinkModel,
                   apart: pd.DataFrame | None = None, old_links: pd.DataFrame | None = None,
                   together: pd.DataFrame | None = None) -> LinkResult:
    """Link new records (existing = None) against linked ones (existing = their current cluster key).

    Only what the new records touch is decided again: the new records, and every existing cluster one
    of them links to, are clustered from scratch with all their candidate pairs; every other cluster
    stays as it is. A full relink makes the same decisions for those records, so the two agree.
    """
    ids = table[config.unique_id].to_numpy()
    is_new = pd.isna(existing)
    order = np.argsort(is_new, kind="stable")  # existing records first, new ones last
    table, existing, ids, is_new = table.iloc[order].reset_index(drop=True), existing[order], ids[order], is_new[order]
    n_old = int((~is_new).sum())
    con = duckdb_settings.connect()
    try:
        n = prepare(con, table, config)
        population = _population(model, n)
        # every old record sharing a counted value (term frequencies, carriers of a contact) with a new
        # one, and every old record a new one is compared with: their pair weights may have moved
        touched_old = _sharing_counted_values(con, config, n_old)
        if not _blocking_covered_by_counts(config):
            block_pairs(con, config, only_new_from=n_old)
            paired = con.execute("SELECT _l FROM pairs UNION SELECT _r FROM pairs").df().iloc[:, 0].to_numpy()
            touched_old = np.union1d(touched_old, paired[paired < n_old])
        touched_keys = set(existing[touched_old])
        if old_links is not None and len(old_links):
            # a cluster split because two members contradicted each other is decided as one component
            # again: every cluster its earlier accepted links reach comes along
            touched_keys |= _linked_clusters(ids, existing, old_links, touched_keys)
        affected = np.flatnonzero(is_new | pd.Series(existing).isin(touched_keys).to_numpy())
        con.register("affected_df", pd.DataFrame({"_id": affected}))
        con.execute("CREATE OR REPLACE TEMP TABLE affected AS SELECT * FROM affected_df")
        con.unregister("affected_df")
        blocking = block_pairs(con, config, within="affected")
        pairs = _with_together(score_pairs(con, config, model, population), _apart_ids(ids, together))
        labels, splits = cluster_pairs(con, config, model, n, pairs, population, _apart_ids(ids, apart))
        shared = _shared_keys(con, config)
    finally:
        con.close()
    # untouched clusters keep their grouping; label every cluster by its smallest record id
    keep = ~np.isin(np.arange(n), affected)
    group = np.where(keep, pd.Series(existing).astype(str).radd("old:").to_numpy(), labels.astype(str))
    smallest = pd.Series(ids).groupby(group).transform("min").to_numpy()
    clusters = pd.DataFrame({config.unique_id: ids, "cluster_id": smallest})
    pairs.insert(0, "id_l", ids[pairs["_l"].to_numpy()])
    pairs.insert(1, "id_r", ids[pairs["_r"].to_numpy()])
    result = LinkResult(clusters, pairs.drop(columns=["_l", "_r"]), model, blocking, shared, splits)
    result.threshold = config.threshold
    return result


def _linked_clusters(ids: np.ndarray, existing: np.ndarray, old_links: pd.DataFrame, keys: set) -> set:
    """Cluster keys reachable from `keys` through earlier accepted links (id_l, id_r)."""
    position = pd.Series(np.arange(len(ids)), index=ids)
    left = position.reindex(old_links["id_l"]).to_numpy()
    right = position.reindex(old_links["id_r"]).to_numpy()
    keep = ~(np.isnan(left) | np.isnan(right))
    labels = components(len(ids), left[keep].astype(np.int64), right[keep].astype(np.int64))
    touched = pd.Series(existing).isin(keys).to_numpy() & pd.notna(existing)  # hashing, not sorting objects
    reached = np.isin(labels, np.unique(labels[touched]))
    return set(existing[reached & pd.notna(existing)])


def _population(model: LinkModel, n: int) -> int:
    """The denominator of term frequencies: fixed by the model, so weights do not drift as the store grows."""
    return max(int(model.trained_on.get("records", 0)), 1) if model.trained_on.get("records") else n


def _blocking_covered_by_counts(config: LinkageConfig) -> bool:
    """Whether every blocking rule keys on a counted column: then sharing a counted value with a new
    record already finds every record a new one can be compared with."""
    counted = set(config.key_stats) | set(tf_columns(config))
    return all(any(expr in counted for expr in rule) for rule in config.blocking)


def _sharing_counted_values(con: duckdb.DuckDBPyConnection, config: LinkageConfig, n_old: int) -> np.ndarray:
    columns = sorted(set(config.key_stats) | set(tf_columns(config)))
    if not columns:
        return np.zeros(0, dtype=np.int64)
    union = " UNION ".join(
        f'SELECT _id FROM recs WHERE _id < {n_old} AND "{c}" IN (SELECT "{c}" FROM recs WHERE _id >= {n_old})'
        for c in columns)
    return con.execute(union).df()["_id"].to_numpy()


def link_values(table: pd.DataFrame, config: LinkageConfig | None = None, as_arrow: bool = False,
                con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame | pa.Table:
    """The values linking counts and blocks on, one row per (record, value): record_id, col, value, surname.

    Computed for new records only (in memory) and kept in the store, so the store can count values
    and find a new record's candidates by key without reading the base. as_arrow: an Arrow table
    (what a bulk import's worker hands on), else pandas. con: an in-memory DuckDB connection to reuse
    (a worker computes the values of many files; a new in-memory database costs tens of ms).
    """
    config = config or load_config()
    own = con is None
    con = con or duckdb_settings.connect()
    try:
        frame = link_frame(table) if "name_partial" in table.columns else table
        prepare(con, pa.Table.from_pandas(frame, preserve_index=False), config, counts=False)
        result = con.sql(link_values_sql(config))
        return result.to_arrow_table() if as_arrow else result.df()
    finally:
        if own:
            con.close()


def link_neighbourhood(table: pd.DataFrame, config: LinkageConfig, model: LinkModel, stats: pd.DataFrame,
                       population: int, apart: pd.DataFrame | None = None,
                       together: pd.DataFrame | None = None) -> LinkResult:
    """Link a closed neighbourhood of the store: the changed records and every cluster they touch.

    `stats` holds the counts over the whole store (col, value, n_records, n_names) for every value
    these records carry, so term frequencies, shared contacts and block sizes are the store's, and
    the decisions are the ones a full relink makes for these records.
    """
    ids = table[config.unique_id].to_numpy()
    con = duckdb_settings.connect()
    # a neighbourhood is small (60k records at a 10k import into 1M): its many short statements run faster
    # on one thread than on two (measured 0.46 s against 0.52 s at 1M, and one core left to the rest)
    con.execute("SET threads = 1")
    try:
        n = prepare(con, table, config, stats=stats)
        blocking = block_pairs(con, config, sizes="store_stats")
        pairs = _with_together(score_pairs(con, config, model, population), _apart_ids(ids, together))
        labels, splits = cluster_pairs(con, config, model, n, pairs, population, _apart_ids(ids, apart))
        shared = _shared_keys(con, config)
    finally:
        con.close()
    clusters = pd.DataFrame({config.unique_id: ids, "cluster_id": ids[labels]})
    pairs.insert(0, "id_l", ids[pairs["_l"].to_numpy()])
    pairs.insert(1, "id_r", ids[pairs["_r"].to_numpy()])
    result = LinkResult(clusters, pairs.drop(columns=["_l", "_r"]), model, blocking, shared, splits,
                        relinked=ids)
    result.threshold = config.threshold
    return result


def counted_columns(config: LinkageConfig) -> list[str]:
    """Value columns whose counts enter pair weights: a change to one re-decides every record carrying it."""
    counted = sorted(set(config.key_stats) | set(tf_columns(config)))
    if not _blocking_covered_by_counts(config):  # then blocking partners must be found by the rule keys too
        counted += [rule_name(rule) for rule in config.blocking if rule_name(rule) not in counted]
    return counted


def link_frame(records: pd.DataFrame) -> pd.DataFrame:
    """The lead records' linkage columns, typed as the engine reads them."""
    table = records[LEAD_LINK_COLUMNS].copy()
    table["record_id"] = table["record_id"].astype("int64")
    table["name_partial"] = table["name_partial"].fillna(False).astype(bool)
    return table


LEAD_LINK_COLUMNS = ["record_id", "name_key", "name_pinyin", "name_partial", "mobile", "landline", "email",
                     "wechat", "qq", "douyin", "kuaishou", "company_key", "name_roman", "name_surname"]


def link_records(records: pd.DataFrame, config: LinkageConfig | None = None,
                 model: LinkModel | None = None, apart: pd.DataFrame | None = None) -> LinkResult:
    """Link standardized lead records (the lead store's `records` columns)."""
    return link_table(link_frame(records), config or load_config(), model, apart=apart)
