"""Clustering that does not chain unrelated people through one weak link.

Pairs at or above the threshold form connected components. A component of three or more records
is then checked as a whole: every pair inside it is scored (not only the blocked ones). If any two
members contradict each other (weight below `split_below`, e.g. different names and different
mobiles), the component is rebuilt by merging its links strongest first and refusing any merge
that would put two contradicting records together. Each decision depends only on the component's
own records and links, so linking a new file incrementally and relinking everything agree.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from datafactory_pipelines.linkage.config import LinkageConfig
from datafactory_pipelines.linkage.model import LinkModel, match_weights, probability
from datafactory_pipelines.linkage.sql import compare, gamma_matrix, tf_inputs

MAX_CHECKED_COMPONENT = 400  # larger components are split by the threshold alone


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components of the graph on 0..n-1 with edges (left, right): each node's label is the
    smallest node of its component.

    In numpy rather than scipy.sparse.csgraph: as fast at a million edges, and importing scipy.sparse
    cost a small import about 0.2 s of start-up. Roots hook onto the smaller label across every edge
    whose ends still differ, then pointer jumping flattens the trees; labels only ever decrease
    (label[x] <= x), so there are no cycles, and a tree's root is its smallest member.
    """
    labels = np.arange(n, dtype=np.int64)
    left, right = np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)
    while len(left):
        a, b = labels[left], labels[right]
        differ = a != b
        if not differ.any():
            break
        left, right, a, b = left[differ], right[differ], a[differ], b[differ]
        low = np.minimum(a, b)
        np.minimum.at(labels, a, low)
        np.minimum.at(labels, b, low)
        while True:
            jumped = labels[labels]
            if np.array_equal(jumped, labels):
                break
            labels = jumped
    return labels


def cluster_pairs(con: duckdb.DuckDBPyConnection, config: LinkageConfig, model: LinkModel, n: int,
                  pairs: pd.DataFrame, population: int, apart: pd.DataFrame | None = None) -> tuple[np.ndarray, int]:
    """Cluster label (the smallest member _id) per record _id, and how many components were split.

    apart: record pairs (_l, _r) an operator said are different people (an unmerge); they never share a cluster.
    """
    accepted = pairs[pairs["match_probability"] >= config.threshold]
    left, right = accepted["_l"].to_numpy(), accepted["_r"].to_numpy()
    labels = components(n, left, right)
    sizes = np.bincount(labels)
    to_check = np.flatnonzero((sizes >= 3) & (sizes <= MAX_CHECKED_COMPONENT))
    conflicts = [pd.DataFrame({"_l": pd.Series(dtype="int64"), "_r": pd.Series(dtype="int64")})]
    if len(to_check):
        members = pd.DataFrame({"_id": np.arange(n), "c": labels})
        members = members[members["c"].isin(to_check)]
        con.register("members_df", members)
        con.execute("CREATE OR REPLACE TEMP TABLE members AS SELECT * FROM members_df")
        con.unregister("members_df")
        con.execute("""CREATE OR REPLACE TEMP TABLE inner_pairs AS
            SELECT a._id AS _l, b._id AS _r, a.c FROM members a JOIN members b ON a.c = b.c AND a._id < b._id""")
        conflicts.append(_contradicting_pairs(con, config, model, pairs, population, "inner_pairs"))
    conflicts = _without_forced(conflicts, accepted, n)
    if apart is not None and len(apart):
        conflicts.append(apart.loc[labels[apart["_l"].to_numpy()] == labels[apart["_r"].to_numpy()], ["_l", "_r"]])
    conflicts = pd.concat(conflicts, ignore_index=True)
    conflicts["c"] = labels[conflicts["_l"].to_numpy()]
    bad = set(conflicts["c"].unique())
    splits = 0
    if bad:
        labels = labels.copy()
        edges = accepted.assign(c=labels[left])
        edges = edges[edges["c"].isin(bad)].sort_values(["c", "match_weight", "_l", "_r"],
                                                        ascending=[True, False, True, True])
        members_of = _members(labels, np.array(sorted(bad)))
        # per component, its edges (strongest first) and conflicting pairs as plain arrays: a few hundred
        # components are rebuilt at a 10k import, and pandas' per-group frames cost more than the merging
        edge_groups = _groups(edges["c"].to_numpy(), edges["_l"].to_numpy(), edges["_r"].to_numpy())
        conflict_groups = _groups(conflicts["c"].to_numpy(), conflicts["_l"].to_numpy(), conflicts["_r"].to_numpy())
        for comp_id in sorted(conflict_groups):
            new = _constrained_merge(*edge_groups[comp_id], *conflict_groups[comp_id], members_of[comp_id])
            for record, root in new.items():
                labels[record] = n + root  # past every component number: no collision
            splits += 1
    # label = smallest member id, so labels are stable however components were numbered
    frame = pd.DataFrame({"_id": np.arange(n), "c": labels})
    return frame.groupby("c")["_id"].transform("min").to_numpy(), splits


FORCED_WEIGHT = 60.0  # a pair a person said is one person (engine._with_together): no evidence outweighs it


def _without_forced(conflicts: list[pd.DataFrame], accepted: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    """Contradictions between records a person merged are overruled: the evidence that kept them apart is
    what the person looked at. (An operator's `apart` is never overruled: it is added after this.)"""
    forced = accepted[accepted["match_weight"] >= FORCED_WEIGHT]
    if forced.empty:
        return conflicts
    together = components(n, forced["_l"].to_numpy(), forced["_r"].to_numpy())
    kept = []
    for frame in conflicts:
        same = together[frame["_l"].to_numpy(dtype=np.int64)] == together[frame["_r"].to_numpy(dtype=np.int64)]
        kept.append(frame[~same])
    return kept


def _contradicting_pairs(con: duckdb.DuckDBPyConnection, config: LinkageConfig, model: LinkModel,
                         pairs: pd.DataFrame, population: int, table: str) -> pd.DataFrame:
    """The pairs (_l, _r) of `table` whose match weight is below `split_below`.

    Most pairs inside a component were candidates and are scored already in `pairs` (same records,
    same model): their weights are reused, and only the pairs no blocking rule produced are compared.
    """
    con.register("scored_df", pairs[["_l", "_r", "match_weight"]])
    try:
        scored = con.execute(f"SELECT i._l, i._r, s.match_weight FROM {table} i JOIN scored_df s USING (_l, _r)").df()
        con.execute(f"CREATE OR REPLACE TEMP TABLE unscored_pairs AS "
                    f"SELECT i._l, i._r FROM {table} i ANTI JOIN scored_df s USING (_l, _r)")
    finally:
        con.unregister("scored_df")
    unscored = compare(con, config, "unscored_pairs")
    weights, _ = match_weights(model, gamma_matrix(unscored, config), tf_inputs(unscored, config, population))
    return pd.concat([scored.loc[scored["match_weight"].to_numpy() < config.split_below, ["_l", "_r"]],
                      unscored.loc[weights < config.split_below, ["_l", "_r"]]], ignore_index=True)


def _members(labels: np.ndarray, wanted: np.ndarray) -> dict[int, np.ndarray]:
    """Record ids of each wanted component (only those: there may be hundreds of thousands of others)."""
    ids = np.flatnonzero(np.isin(labels, wanted))
    order = np.argsort(labels[ids], kind="stable")
    ids, comp = ids[order], labels[ids][order]
    cuts = np.flatnonzero(np.diff(comp)) + 1
    return {int(group_comp[0]): group_ids for group_ids, group_comp in zip(np.split(ids, cuts), np.split(comp, cuts),
                                                                          strict=True)}


def _groups(keys: np.ndarray, left: np.ndarray, right: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """key -> (left, right) of its rows, each group in the rows' order."""
    order = np.argsort(keys, kind="stable")
    keys, left, right = keys[order], left[order], right[order]
    cuts = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate([[0], cuts]).astype(np.int64)
    return {int(keys[start]): (part_l, part_r) for start, part_l, part_r
            in zip(starts, np.split(left, cuts), np.split(right, cuts), strict=True)} if len(keys) else {}


def _constrained_merge(edge_l: np.ndarray, edge_r: np.ndarray, conflict_l: np.ndarray, conflict_r: np.ndarray,
                       records: np.ndarray) -> dict[int, int]:
    """Union records along edges (strongest first) never joining two groups holding a conflicting pair."""
    parent = {int(r): int(r) for r in records}
    groups = {int(r): {int(r)} for r in records}
    against: dict[int, set[int]] = {int(r): set() for r in records}
    for a, b in zip(conflict_l.tolist(), conflict_r.tolist(), strict=True):
        against[int(a)].add(int(b))
        against[int(b)].add(int(a))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(edge_l.tolist(), edge_r.tolist(), strict=True):
        ra, rb = find(int(a)), int(find(int(b)))
        if ra == rb:
            continue
        small, big = (ra, rb) if len(groups[ra]) < len(groups[rb]) else (rb, ra)
        if any(against[x] & groups[big] for x in groups[small]):
            continue
        parent[small] = big
        groups[big] |= groups.pop(small)
    return {r: min(groups[find(r)]) for r in parent}


__all__ = ["cluster_pairs", "components", "probability"]
