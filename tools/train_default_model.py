"""Train the shipped lead model (datafactory_pipelines/linkage/leads_model.json) on generated sample leads.

    python tools/train_default_model.py [--records 40000]

A store with fewer than MIN_TRAINING_RECORDS records links with this model; larger stores train
their own on their own data.
"""

from __future__ import annotations

import argparse
import tempfile
from importlib import resources
from pathlib import Path

import pandas as pd

from datafactory_pipelines import CANONICAL_FIELDS
from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.linkage import load_config
from datafactory_pipelines.linkage.engine import LEAD_LINK_COLUMNS, link_table
from datafactory_pipelines.sample_data import generate_records
from datafactory_pipelines.sample_exports import write_export_files
from datafactory_pipelines.standardize import standardize_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=40000)
    args = parser.parse_args()
    raw = generate_records(people=args.records * 2 // 5, records=args.records, seed=2024)
    # and real-shaped exports (romanized and salutation-only names, role mailboxes, mixed columns …),
    # read as files, so every comparison level is seen among matches
    with tempfile.TemporaryDirectory() as folder:
        exports = write_export_files(folder, people=max(240, args.records // 20), seed=2024)
        read = pd.concat([read_file(path, pinned={}).table for path in exports.files], ignore_index=True)
    raw = pd.concat([raw, read], ignore_index=True)
    std = standardize_frame(raw[[c for c in CANONICAL_FIELDS if c in raw.columns]].fillna(""))
    std["record_id"] = range(len(std))
    result = link_table(std[LEAD_LINK_COLUMNS], load_config())
    result.model.trained_on["source"] = "sample"
    target = Path(str(resources.files("datafactory_pipelines.linkage").joinpath("leads_model.json")))
    target.write_text(result.model.to_json(), encoding="utf-8")
    print(f"trained on {args.records} sample records -> {target}")
    for row in result.model.describe():
        print(f"  {row['comparison']:<9} {row['level']:<18} m={row['m']:.4f} u={row['u']:.6f} w={row['match_weight']:+.1f}")


if __name__ == "__main__":
    main()
