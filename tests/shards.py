"""The suite cut into shards of about equal time, for `python -m tests.run` (or `pytest --shard 2/3`).

A shard is a plain pytest session that keeps some test modules' halves and deselects the rest: a module's
PostgreSQL tests (the `postgres` mark) are one part and its other tests another, so a shard's module-scoped
fixtures start once and every shard starts its own PostgreSQL only when it holds a PostgreSQL part. Parts are
dealt out longest first, each to the shard with the least time so far (by tests/durations.json, measured
seconds per part); a part the file does not know yet counts DEFAULT_SECONDS a test. Every shard works the
dealing out from the same collected tests and the same file, so together they run each test exactly once.

Refresh the file after a suite run with junit output (`python -m tests.run --junitxml=/tmp/suite.xml`
writes one file per shard): `python -m tests.shards /tmp/suite-*.xml`.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

DURATIONS = Path(__file__).with_name("durations.json")

#: the seconds a test of a part missing from DURATIONS is taken to cost (about the suite's mean)
DEFAULT_SECONDS = 3.0


def part_of(module_file: str, on_postgres: bool) -> str:
    """'test_x.py' or 'test_x.py [postgres]': the unit a shard takes whole."""
    return f"{module_file} [postgres]" if on_postgres else module_file


def parse_shard(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3): the second of three shards."""
    index, _, count = text.partition("/")
    shard, shards = int(index), int(count)
    if not 1 <= shard <= shards:
        raise ValueError(f"--shard {text}: want K/N with 1 <= K <= N")
    return shard, shards


def deal(tests_per_part: dict[str, int], shards: int, known: dict[str, float] | None = None) -> dict[str, int]:
    """Each part's shard (1..shards): longest part first, to the shard with the least time so far."""
    known = known_seconds() if known is None else known
    cost = {part: known.get(part, DEFAULT_SECONDS * count) for part, count in tests_per_part.items()}
    loads = [0.0] * shards
    placed = {}
    for part in sorted(cost, key=lambda p: (-cost[p], p)):
        lightest = min(range(shards), key=lambda i: (loads[i], i))
        loads[lightest] += cost[part]
        placed[part] = lightest + 1
    return placed


def known_seconds() -> dict[str, float]:
    return json.loads(DURATIONS.read_text(encoding="utf-8")) if DURATIONS.exists() else {}


def measured(junit_files: list[Path]) -> dict[str, float]:
    """Seconds per part from pytest's junit XML (each test case's setup + call + teardown)."""
    seconds: dict[str, float] = defaultdict(float)
    for path in junit_files:
        for case in ET.parse(path).iter("testcase"):
            module = case.get("classname", "").split(".")
            module_file = next((m + ".py" for m in module if m.startswith("test_")), None)
            if module_file is None:
                continue
            params = case.get("name", "").partition("[")[2].rstrip("]").split("-")
            on_postgres = "postgres" in params or module_file[:-3] in _postgres_modules()
            seconds[part_of(module_file, on_postgres)] += float(case.get("time", 0))
    return {part: round(total, 1) for part, total in sorted(seconds.items())}


def _postgres_modules() -> set[str]:
    from tests.conftest import POSTGRES_MODULES

    return POSTGRES_MODULES


if __name__ == "__main__":
    found = measured([Path(p) for p in sys.argv[1:]])
    DURATIONS.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{DURATIONS}: {len(found)} parts, {sum(found.values()):.0f} s in all")
