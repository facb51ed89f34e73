"""Deterministic linkage over standardized records, run in DuckDB.

Evidence, strongest first: two or more shared contact keys; one shared contact key with a
compatible name; the same full name at the same company without conflicting contacts; a shared
landline with the same full name. Keys that many different names carry (switchboards, shared
mailboxes) are not evidence at all. Clusters are the connected components of accepted pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

LINK_COLUMNS = ["record_id", "name_key", "name_pinyin", "name_partial", "mobile", "landline", "email",
                "wechat", "qq", "douyin", "kuaishou", "company_key"]

ACCEPT_SQL = """
SELECT id_l, id_r, name_relation, shared_contacts FROM scored_pairs WHERE
     shared_contacts >= 2
  OR (shared_contacts = 1 AND name_relation IN ('same', 'compatible', 'similar', 'unknown'))
  OR (shared_contacts = 0 AND name_relation = 'same' AND same_company AND conflicting_contacts <= 1)
  OR (shared_landline AND name_relation = 'same')
"""


@dataclass
class LinkResult:
    clusters: pd.DataFrame  # record_id, cluster_id (the smallest record_id in the cluster)
    candidate_pairs: int
    matched_pairs: int
    shared_keys: pd.DataFrame  # kind, value, n_records, n_names: contacts many people share (switchboards …)

    @property
    def shared_keys_ignored(self) -> int:
        return len(self.shared_keys)


def link_records(records: pd.DataFrame, max_block: int = 500, max_names_per_key: int = 2) -> LinkResult:
    recs = records[LINK_COLUMNS].copy()
    recs["record_id"] = recs["record_id"].astype("int64")
    for col in LINK_COLUMNS[1:]:
        if col != "name_partial":
            recs[col] = recs[col].fillna("").astype(str)
    recs["name_partial"] = recs["name_partial"].fillna(False).astype(bool)
    con = duckdb.connect()
    try:
        con.register("recs_df", recs)
        con.execute("CREATE TEMP TABLE recs AS SELECT * FROM recs_df")
        sql = resources.files("datafactory_pipelines.linkage").joinpath("pairs.sql").read_text(encoding="utf-8")
        sql = sql.replace("$max_block", str(int(max_block))).replace("$max_names_per_key", str(int(max_names_per_key)))
        for statement in (s for s in sql.split(";") if s.strip()):
            con.execute(statement)
        accepted = con.execute(ACCEPT_SQL).df()
        candidates = con.execute("SELECT count(*) FROM scored_pairs").fetchall()[0][0]
        shared = con.execute(
            f"SELECT kind, value, n_records, n_names FROM key_stats "
            f"WHERE n_names > {int(max_names_per_key)} OR n_records > {int(max_block)} ORDER BY n_records DESC"
        ).df()
    finally:
        con.close()
    clusters = _components(recs["record_id"].to_numpy(), accepted["id_l"].to_numpy(), accepted["id_r"].to_numpy())
    return LinkResult(clusters, int(candidates), len(accepted), shared)


def _components(ids: np.ndarray, left: np.ndarray, right: np.ndarray) -> pd.DataFrame:
    n = len(ids)
    if n == 0:
        return pd.DataFrame({"record_id": pd.Series([], dtype="int64"), "cluster_id": pd.Series([], dtype="int64")})
    position = pd.Series(np.arange(n), index=ids)
    li = position.reindex(left).to_numpy()
    ri = position.reindex(right).to_numpy()
    graph = coo_matrix((np.ones(len(li), dtype=np.int8), (li, ri)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    frame = pd.DataFrame({"record_id": ids, "label": labels})
    frame["cluster_id"] = frame.groupby("label")["record_id"].transform("min")
    return frame[["record_id", "cluster_id"]]
