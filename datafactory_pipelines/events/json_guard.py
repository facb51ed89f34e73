"""JSON from other systems, checked before it is parsed: nesting depth without recursion, one event at a time.

Python's json module parses nested values recursively: a 5,000-deep array raises RecursionError, and a
600-deep object parses but later fails to serialize. So the text is scanned first, by a loop over its
structural tokens (no recursion, linear in the text: strings are skipped by one regex match each), for
the depth of each top-level element. A too-deep element is refused on its own with the reason; the
others in the same batch are parsed and judged on their own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import accumulate

MAX_JSON_DEPTH = 16  # a batch (1) > event (2) > data (3) > a list in data (4): 16 leaves room and no more

# a string (possibly unterminated: then it runs to the end, and never makes the scan go back), or one
# structural character; everything else (numbers, literals, blanks) is skipped by finditer
_STRING_TEXT = r'"[^"\\]*+(?:\\.[^"\\]*+)*+(?:"|\Z)'
_TOKENS = re.compile(_STRING_TEXT + r"|[\[\]{},]", re.DOTALL)


@dataclass
class Element:
    """One top-level value of a JSON text: its text span, its depth, and its parsed value or why not."""

    start: int
    end: int
    depth: int
    value: object = None
    error: str = ""


def _spans(text: str) -> tuple[list[tuple[int, int, int]], bool]:
    """For a JSON text: the (start, end, max depth) of each element of a top-level array, or of the one
    top-level value; and whether the text is a top-level array."""
    depth = 0
    deepest = 0
    spans: list[tuple[int, int, int]] = []
    first = len(text) - len(text.lstrip())
    is_array = text.startswith("[", first)
    start = first + 1 if is_array else first
    for match in _TOKENS.finditer(text):
        token = match.group(0)
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            if is_array and depth == 1:  # the end of the top-level array
                if text[match.end():].strip():
                    raise ValueError(f"extra data after the array at character {match.end()}")
                spans.append((start, match.start(), deepest - 1))
                return spans, True
            depth -= 1
        elif token == "," and is_array and depth == 1:
            spans.append((start, match.start(), deepest - 1))
            start, deepest = match.end(), 1
    spans.append((start, len(text), deepest - (1 if is_array else 0)))
    return spans, is_array


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _loads(text: str) -> object:
    """json.loads refusing NaN and Infinity (Python's extension, not JSON) and text that is not text: a
    lone surrogate escape (\\ud800) parses into a str no UTF-8 store or file can hold."""
    value = json.loads(text, parse_constant=_no_constant)
    if "\\u" in text:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"a string holds a lone surrogate ({err.object[err.start]!a}), not text") from err
    return value


_STRING = re.compile(_STRING_TEXT, re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def max_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in a JSON text (0 for a scalar); no recursion. Strings and
    everything but brackets are dropped by two regex passes (C speed), so the loop sees brackets only."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets.encode())), default=0) if brackets else 0


def parse_limited(text: str, limit: int = MAX_JSON_DEPTH) -> object:
    """json.loads, after checking the depth without recursion; ValueError says why a text is refused."""
    depth = max_depth(text)
    if depth > limit:
        raise ValueError(f"JSON nested {depth} deep; at most {limit}")
    return _loads(text)


def parse_batch(text: str, limit: int = MAX_JSON_DEPTH) -> tuple[list[Element], bool]:
    """The elements of a JSON body (a top-level array's items, or the one value), each parsed on its own
    or refused with the reason; and whether the body was an array.

    The usual body (shallow, well formed) is parsed in one call; only a body with a too-deep part is split,
    so the good events next to a hostile one are kept. ValueError when the body as a whole is not JSON."""
    if max_depth(text) <= limit:
        try:
            value = _loads(text)  # json.JSONDecodeError (a ValueError) for a body that is not JSON
        except json.JSONDecodeError:
            raise
        except ValueError:  # NaN or a lone surrogate somewhere: find which event holds it
            value = None
        else:
            if isinstance(value, list):
                return [Element(0, 0, 0, item) for item in value], True
            return [Element(0, len(text), 0, value)], False
    spans, is_array = _spans(text)
    elements = []
    for start, end, depth in spans:
        piece = text[start:end]
        if not piece.strip() and is_array and len(spans) == 1:
            break  # an empty array
        element = Element(start, end, depth)
        if depth > limit:
            element.error = f"JSON nested {depth} deep; at most {limit}"
        else:
            try:
                element.value = _loads(piece)
            except json.JSONDecodeError as err:
                element.error = f"not JSON ({err.msg}, column {err.colno})"
            except ValueError as err:
                element.error = str(err)
        elements.append(element)
    return elements, is_array
