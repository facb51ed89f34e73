"""The few places DuckDB's SQL and PostgreSQL's differ, rewritten on the way to PostgreSQL.

The store's SQL is written once (store/shared_sql.py, change_sql.py and the store modules), in the standard
SQL both databases accept; what remains DuckDB's own is rewritten here, statement by statement, and nothing
else: placeholders (`?` and `$name` to psycopg's), DuckDB's `arg_min` / `arg_max` aggregates, and `sha256`
of text (hex text on DuckDB; bytes of bytes on PostgreSQL).
"""

from __future__ import annotations

import re
from typing import Any

_ARG_MIN_MAX = re.compile(r"\barg_(min|max)\(\s*([\w.\"]+)\s*,\s*([\w.\"]+)\s*\)(\s*FILTER\s*\(WHERE[^()]*(?:\([^()]*\)[^()]*)*\))?",
                          re.IGNORECASE)


def to_postgres(sql: str, has_params: bool, named: bool = False, params: Any = None) -> str:
    """`sql` as PostgreSQL (through psycopg) reads it. A list parameter becomes a typed array (text[] or
    bigint[]): DuckDB infers a list's type, PostgreSQL cannot tell `unnest('{…}')` apart."""
    sql = _ARG_MIN_MAX.sub(lambda m: f"(array_agg({m.group(2)} ORDER BY {m.group(3)}"
                           f"{' DESC' if m.group(1).lower() == 'max' else ''}){m.group(4) or ''})[1]", sql)
    sql = _rewrite_calls(sql, "sha256", lambda arg: f"encode(sha256(convert_to({arg}, 'UTF8')), 'hex')")
    if not has_params:
        return sql
    return _placeholders(sql, named, params)


def _array_cast(value: Any) -> str:
    if not isinstance(value, (list, tuple)):
        return ""
    if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return "::bigint[]"
    return "::text[]"


def _rewrite_calls(sql: str, function: str, rewrite) -> str:  # noqa: ANN001 - a str -> str function
    """Every call `function(arg)` (its argument balanced in parentheses) as `rewrite(arg)`."""
    pattern = re.compile(rf"\b{function}\(", re.IGNORECASE)
    out, start = [], 0
    for match in pattern.finditer(sql):
        if match.start() < start:
            continue
        depth, i = 1, match.end()
        while i < len(sql) and depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        out.append(sql[start:match.start()])
        out.append(rewrite(sql[match.end():i - 1]))
        start = i
    out.append(sql[start:])
    return "".join(out)


def _placeholders(sql: str, named: bool, params: Any = None) -> str:
    """`?` (or `$name`) outside string literals and quoted names becomes `%s` (`%(name)s`); every `%` is
    doubled first, since psycopg reads the whole text for its own placeholders."""
    out: list[str] = []
    i, n = 0, len(sql)
    quote: str | None = None
    position = 0
    while i < n:
        ch = sql[i]
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not named:
            value = params[position] if params is not None and position < len(params) else None
            out.append("%s" + _array_cast(value))
            position += 1
        elif ch == "$" and named and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            key = sql[i + 1:j]
            out.append(f"%({key})s" + _array_cast(params.get(key) if isinstance(params, dict) else None))
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)
