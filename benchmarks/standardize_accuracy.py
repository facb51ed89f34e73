"""Standardization against the truth of a gen_leads.py folder (leads.csv or leads.parquet + truth.csv).

    python benchmarks/standardize_accuracy.py GEN_DIR

Reports, per field, how many messy values were recovered exactly, how many one-digit-typo mobiles
slipped through as valid, and rows per second of the vectorized standardizer.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.standardize import standardize_frame


def _digits(values: pd.Series) -> pd.Series:
    return values.fillna("").astype(str).str.translate(str.maketrans("０１２３４５６７８９", "0123456789")) \
        .str.replace(r"\.0$", "", regex=True).str.replace(r"\D", "", regex=True).str.replace(r"^(?:0086|86)", "", regex=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("gen_dir", type=Path)
    args = parser.parse_args()
    source = args.gen_dir / "leads.parquet"
    leads = pd.read_parquet(source) if source.exists() else pd.read_csv(args.gen_dir / "leads.csv", dtype=str,
                                                                          keep_default_na=False)
    truth = pd.read_csv(args.gen_dir / "truth.csv", dtype=str, keep_default_na=False).set_index("record_id")
    truth = truth.reindex(leads["record_id"])
    raw = leads[[c for c in CANONICAL_FIELDS if c in leads.columns]].fillna("").astype(str)
    started = time.perf_counter()
    std = standardize_frame(raw)
    seconds = time.perf_counter() - started
    print(f"standardized {len(std):,} rows in {seconds:.2f}s: {len(std) / seconds:,.0f} rows/s")

    true_mobile = truth["true_mobile"].to_numpy()
    raw_digits = _digits(raw["mobile"]).to_numpy()
    given = (raw["mobile"].str.strip() != "").to_numpy() & (true_mobile != "")
    switchboard = raw["mobile"].str.contains(r"^0\d{2,3}-", regex=True).to_numpy()
    typo = given & ~switchboard & (raw_digits != true_mobile) & (np.char.str_len(raw_digits.astype(str)) == 11)
    recoverable = given & ~switchboard & ~typo
    got = std["mobile"].to_numpy()
    print(f"mobile: {(got[recoverable] == true_mobile[recoverable]).mean():.4%} of {recoverable.sum():,} "
          f"recoverable messy values recovered exactly")
    typo_valid = (std["mobile_status"].to_numpy()[typo] != "invalid")
    print(f"mobile: {typo.sum():,} one-digit typos; {typo_valid.mean():.2%} still look like valid numbers "
          f"(no single-cell rule can see them; the linkage compares numbers across a lead's records)")
    print(f"landline/switchboard cells typed as landline: {(std['landline'].to_numpy()[switchboard] != '').mean():.2%}")

    true_email = truth["true_email"].to_numpy()
    has_email = (raw["email"].str.strip() != "").to_numpy() & (true_email != "")
    print(f"email: {(std['email'].to_numpy()[has_email] == true_email[has_email]).mean():.4%} of {has_email.sum():,} recovered")

    true_name = truth["true_name"].to_numpy()
    name = std["name"].to_numpy()
    partial = std["name_partial"].to_numpy()
    full = ~partial & (raw["name"].str.strip() != "").to_numpy()
    print(f"name: {(name[full] == true_name[full]).mean():.2%} of {full.sum():,} full names equal the true name; "
          f"{partial.sum():,} partial names (surname + honorific) recognized, surname right in "
          f"{(np.array([t[:1] for t in true_name[partial]]) == name[partial]).mean():.2%}")
    true_company = truth["true_company"].to_numpy()
    company = std["company"].to_numpy()
    has_company = company != ""
    print(f"company: {(company[has_company] == true_company[has_company]).mean():.2%} spelled as the true name; "
          "the core key groups the variants for matching")
    true_title = truth["true_title"].to_numpy()
    title = std["title"].to_numpy()
    has_title = title != ""
    print(f"title: {(title[has_title] == true_title[has_title]).mean():.2%} of {has_title.sum():,} mapped to the canonical title")


if __name__ == "__main__":
    main()
