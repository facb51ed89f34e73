"""Incremental linking: N new records against the rest, with the model the full run learned.

    python benchmarks/incremental.py GEN_DIR [--new 10000]

Links everything once (training the model), then links the last --new records as a new import
against the others and reports the incremental wall time and whether it agrees with the full run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.linkage import link_table, load_config
from datafactory_pipelines.linkage.engine import LEAD_LINK_COLUMNS, link_increment
from datafactory_pipelines.standardize import standardize_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gen_dir", type=Path)
    parser.add_argument("--new", type=int, default=10_000)
    args = parser.parse_args()
    source = args.gen_dir / "leads.parquet"
    raw = pd.read_parquet(source) if source.exists() else pd.read_csv(args.gen_dir / "leads.csv", dtype=str,
                                                                       keep_default_na=False)
    std = standardize_frame(raw[[c for c in CANONICAL_FIELDS if c in raw.columns]].fillna("").astype(str))
    table = std[LEAD_LINK_COLUMNS[1:]].assign(record_id=np.arange(len(std)))[LEAD_LINK_COLUMNS]
    config = load_config()
    old = table.iloc[: -args.new]
    started = time.perf_counter()
    first = link_table(old, config)
    print(f"full link of {len(old):,} existing records: {time.perf_counter() - started:.1f}s")
    existing = np.concatenate([first.clusters["cluster_id"].astype(str).to_numpy(),
                               np.full(args.new, None, dtype=object)])
    started = time.perf_counter()
    accepted = first.pairs[first.pairs["match_probability"] >= config.threshold][["id_l", "id_r"]]
    increment = link_increment(table, existing, config, first.model, old_links=accepted)
    seconds = time.perf_counter() - started
    print(f"incremental link of {args.new:,} new records against {len(old):,}: {seconds:.1f}s")
    full = link_table(table, config, first.model)

    def partition(clusters: pd.DataFrame) -> set[frozenset[int]]:
        return {frozenset(g) for _, g in clusters.groupby("cluster_id")["record_id"]}

    same = partition(increment.clusters) == partition(full.clusters)
    print(f"incremental clusters equal a full relink with the same model: {same}")


if __name__ == "__main__":
    main()
