"""The lead's owner (the salesperson who follows it up): a person's name as text.

Nothing is guessed: the name is half-width, trimmed and single-spaced, with control and format
characters (bidi overrides, zero-width spaces) dropped so an owner cannot be spoofed by look-alikes.
"""

from __future__ import annotations

import pyarrow as pa

from datafactory_pipelines.standardize.text import as_strings, normalize, sub

# Cc (controls) and Cf (format: bidi marks and overrides, zero-width characters, BOM)
_INVISIBLE = r"[\p{Cc}\p{Cf}]"


def standardize_owners(values: pa.Array) -> pa.Array:
    """Owner names, cleaned: '' where nothing was given."""
    text = sub(as_strings(values), r"[\t\n\r\v\f]", " ")
    return normalize(sub(text, _INVISIBLE))


def standardize_owner(value: object) -> str:
    return standardize_owners(as_strings([value]))[0].as_py()
