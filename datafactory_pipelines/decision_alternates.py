"""A contact decision keeps the lead's alternates right, whatever raised the conflict.

Taking the incoming mobile (or email) makes it the primary: the old primary becomes an alternate, and the new
primary leaves the alternates (an unverified event put it there while it waited). Keeping both leaves the
incoming value among the alternates. A primary is never also its own alternate, and no value appears twice.
The lead's alternates after the decision are written with it (a history row of their own).
"""

from __future__ import annotations

from collections.abc import Mapping

from datafactory_pipelines.fields import FIELDS

#: primary field -> the lead column listing its alternates (mobile -> mobile_alternates)
ALTERNATES_OF = {f.of: f.name for f in FIELDS if f.of and f.name.endswith("_alternates")}


def _split(value: object) -> list[str]:
    text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
    return [v for v in text.split(";") if v]


def alternates_after(leads: Mapping[str, Mapping[str, object]],
                     decisions: list[tuple[str, str, str, str, str]]) -> dict[tuple[str, str], str]:
    """decisions: (lead, field, decision, incoming value, decided value), in the order they apply.
    Returns {(lead, alternates column): alternates} for every lead whose alternates the decisions touch."""
    primary: dict[tuple[str, str], str] = {}
    alternates: dict[tuple[str, str], list[str]] = {}
    for lead, field, decision, incoming, value in decisions:
        column = ALTERNATES_OF.get(field)
        if column is None or lead not in leads:
            continue
        before = primary.get((lead, field), str(leads[lead].get(field) or ""))
        listed = alternates.get((lead, column), _split(leads[lead].get(column)))
        # an empty decided value clears the primary (an undo's "value before"): nothing moves to the alternates
        extra = [before] if decision == "incoming" and value else [incoming] if decision == "both" else []
        kept: list[str] = []
        for candidate in [*listed, *extra]:
            if candidate and candidate != value and candidate not in kept:
                kept.append(candidate)
        primary[(lead, field)] = value
        alternates[(lead, column)] = kept
    return {key: ";".join(values) for key, values in alternates.items()}
