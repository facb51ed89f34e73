"""The soak test of `datafactory serve`, short (benchmarks/soak_serve.py runs it for 10 minutes): a real server
on 127.0.0.1, two clients sending good and hostile requests, events applied alongside."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _soak_module():
    spec = importlib.util.spec_from_file_location("soak_serve", ROOT / "benchmarks" / "soak_serve.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["soak_serve"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_serve_under_mixed_good_and_hostile_requests_loses_nothing_and_applies_each_good_event_once(
        tmp_path: Path) -> None:
    result = _soak_module().run_soak(minutes=0.2, max_requests=3000, home=tmp_path / "home", log=lambda _: None)
    assert result["problems"] == []
    assert result["good_events"] > 50 and result["events_stored"] == result["good_events"]
    assert result["applied_by_interval_runs"] == result["good_events"]
    assert {"good", "replay", "hostile", "forged source", "deep beside good", "wrong key"} <= set(result["by_kind"])
    assert not any(status >= 500 for status in result["statuses"])
