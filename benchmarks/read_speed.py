"""Reading speed: a 200,000-row x 12-column .xlsx read and header-mapped, then standardized.

    python benchmarks/read_speed.py [--rows 200000] [--keep FILE]

Target (README): read + map >= 100k rows/s on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import xlsxwriter

from datafactory_pipelines.ingest import read_file
from datafactory_pipelines.pipeline import standardize_import
from datafactory_pipelines.sample_data import HEADER_STYLES, generate_records

COLUMNS = ["name", "mobile", "email", "wechat", "qq", "douyin", "company", "title", "address", "source",
           "collected_at"]
HEADERS = {**HEADER_STYLES[0], **HEADER_STYLES[1], **HEADER_STYLES[3]}


def write_workbook(path: Path, rows: int) -> None:
    base = generate_records(people=max(1000, rows * 2 // 5), records=max(2000, rows), seed=5)  # no repeats
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = workbook.add_worksheet("线索")
    sheet.write_row(0, 0, [HEADERS.get(c, c) for c in COLUMNS] + ["备注"])
    values = base[COLUMNS].to_numpy().tolist()
    for r in range(rows):
        row = values[r % len(values)]
        sheet.write_row(r + 1, 0, row + [f"note {r}"])
    workbook.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keep", help="write the workbook here and keep it")
    args = parser.parse_args()
    path = Path(args.keep) if args.keep else Path(tempfile.mkdtemp()) / "bench.xlsx"
    if not path.exists():
        started = time.perf_counter()
        write_workbook(path, args.rows)
        print(f"wrote {args.rows} x 12 workbook ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s")
    started, cpu = time.perf_counter(), time.process_time()
    raw = read_file(path)
    read_s, read_cpu = time.perf_counter() - started, time.process_time() - cpu
    started, cpu = time.perf_counter(), time.process_time()
    prepared = standardize_import(raw)
    std_s, std_cpu = time.perf_counter() - started, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # CPU seconds too: on a shared, loaded machine they move far less than wall time
    print(f"read + map      {raw.rows_read:>8} rows  {read_s:6.2f}s  {raw.rows_read / read_s:>9,.0f} rows/s"
          f"  (CPU {read_cpu:.2f}s)")
    print(f"standardize     {len(prepared.records):>8} rows  {std_s:6.2f}s  {len(prepared.records) / std_s:>9,.0f} rows/s"
          f"  (CPU {std_cpu:.2f}s)")
    print(f"peak RSS {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
