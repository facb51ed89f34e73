"""events/json_guard.py: JSON depth without recursion, each event of a batch parsed on its own."""

from __future__ import annotations

import pytest

from datafactory_pipelines.events.json_guard import max_depth, parse_batch, parse_limited


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert max_depth('["[[[\\"[[", {"a": [1]}]') == 3
    assert max_depth('"[[[') == 0 and max_depth("1") == 0 and max_depth("{}") == 1
    assert max_depth("[" * 1_000_000) == 1_000_000  # no recursion, so no RecursionError


def test_a_batch_keeps_its_good_events_beside_a_deep_one() -> None:
    elements, is_array = parse_batch('[{"a": 1}, ' + "[" * 40 + "]" * 40 + ', {"b": "]},"}]')
    assert is_array and [e.value for e in elements] == [{"a": 1}, None, {"b": "]},"}]
    assert elements[1].error == "JSON nested 40 deep; at most 16"
    assert parse_batch("[]") == ([], True)


def test_what_is_not_json_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="extra data after the array"):
        parse_batch("[" + "[" * 20 + "]" * 20 + "] trailing")
    with pytest.raises(ValueError, match="NaN is not a JSON number"):
        parse_limited('{"x": NaN}')
    with pytest.raises(ValueError, match="lone surrogate"):
        parse_limited('{"x": "\\ud800"}')
    assert parse_limited('{"x": "\\ud83d\\ude00"}') == {"x": "😀"}  # a pair is text
    elements, _ = parse_batch('[{"ok": 1}, {"x": Infinity}]')
    assert elements[0].value == {"ok": 1} and elements[1].error == "Infinity is not a JSON number"
