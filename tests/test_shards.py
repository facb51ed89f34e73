"""The suite's shards (tests/shards.py, tests/run.py): every test in exactly one shard, parts dealt longest
first to the lightest shard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.shards import DEFAULT_SECONDS, deal, parse_shard

ROOT = Path(__file__).resolve().parents[1]


def test_parts_are_dealt_longest_first_to_the_lightest_shard() -> None:
    known = {"a.py": 10.0, "b.py": 9.0, "c.py [postgres]": 8.0, "d.py": 1.0}
    placed = deal({"a.py": 4, "b.py": 3, "c.py [postgres]": 2, "d.py": 1, "new.py": 2}, 2, known)
    # a (10) -> 1; b (9) -> 2; c (8) -> 2 (9 < 10); new (2 tests, unknown: 2 * DEFAULT_SECONDS) -> 1; d -> 1
    assert DEFAULT_SECONDS * 2 < 8
    assert placed == {"a.py": 1, "b.py": 2, "c.py [postgres]": 2, "new.py": 1, "d.py": 1}
    assert parse_shard("2/3") == (2, 3)
    for wrong in ("0/3", "4/3"):
        with pytest.raises(ValueError, match=wrong):
            parse_shard(wrong)


def _collected(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_three_shards_hold_every_test_of_the_suite_exactly_once() -> None:
    whole = _collected("--backend", "both")
    shards = [_collected("--backend", "both", f"--shard={k}/3") for k in (1, 2, 3)]
    assert all(shards) and sum(len(s) for s in shards) == len(whole)
    assert sorted(t for s in shards for t in s) == sorted(whole)
