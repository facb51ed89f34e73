"""Our own numbers are not the lead's: a number on nearly every row of a file, beside many different people.

Visit logs, call lists and order exports carry the seller's hotline or switchboard (a 400 number, one
landline) on most rows. Read as a contact, it would make every row reachable and link everyone who
called it. A number is taken as the file's own when it stands on at least `SHARE` of a file's rows
(and at least `MIN_ROWS` rows) and those rows name at least `MIN_PEOPLE` different people (by surname,
or, where names are missing, by the other contacts beside it). It is removed from the rows' contacts;
a row left with no other contact is quarantined, saying why. One person's own number on all rows of
their own call log stays theirs: the rows name one person.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from datafactory_pipelines.masking import mask_value

logger = logging.getLogger(__name__)

SHARE = 0.5
MIN_ROWS = 20
MIN_PEOPLE = 3
OWN_NUMBER_REASON = "only our own number (the file's hotline or switchboard)"


def _numbers_per_row(out: dict[str, np.ndarray]) -> pd.DataFrame:
    """(row, number) for every phone a row carries: mobile, landline, alternates."""
    frames = []
    for column in ("mobile", "landline", "mobile_alternates"):
        values = pd.Series(out[column], dtype=object)
        values = values[values != ""]
        if column == "mobile_alternates":
            values = values.str.split(";").explode()
        frames.append(pd.DataFrame({"row": values.index.to_numpy(), "number": values.to_numpy()}))
    numbers = pd.concat(frames, ignore_index=True)
    return numbers[numbers["number"] != ""].drop_duplicates()


def _most_written(out: dict[str, np.ndarray]) -> int:
    """How often the commonest number is written in the file (a row writing it twice counts twice): no
    number written fewer times than a file's own would need can be one, and most files end here."""
    alternates = pc.list_flatten(pc.split_pattern(pa.array(out["mobile_alternates"], pa.string()), ";"))
    written = pa.concat_arrays([pa.array(out["mobile"], pa.string()), pa.array(out["landline"], pa.string()),
                                alternates])
    counts = pc.value_counts(pc.filter(written, pc.not_equal(written, "")))
    return int(pc.max(counts.field("counts")).as_py()) if len(counts) else 0


def house_numbers(out: dict[str, np.ndarray]) -> list[str]:
    """The numbers of this file that are ours, not its leads'."""
    n = len(out["mobile"])
    if n < MIN_ROWS or _most_written(out) < max(MIN_ROWS, SHARE * n):
        return []
    numbers = _numbers_per_row(out)
    if numbers.empty:
        return []
    counts = numbers["number"].value_counts()
    frequent = counts[counts >= max(MIN_ROWS, SHARE * n)].index.tolist()
    ours = []
    surnames = pd.Series(out["name_surname"], dtype=object)
    for number in frequent:
        rows = numbers.loc[numbers["number"] == number, "row"].to_numpy()
        people = surnames.iloc[rows]
        named = people[people != ""].nunique()
        others = numbers[numbers["row"].isin(rows) & (numbers["number"] != number)]["number"].nunique()
        emails = pd.Series(out["email"], dtype=object).iloc[rows]
        others += emails[emails != ""].nunique()
        if named >= MIN_PEOPLE or others >= MIN_PEOPLE * 2:
            ours.append(number)
    return ours


def drop_house_numbers(out: dict[str, np.ndarray]) -> list[str]:
    """Remove the file's own numbers from every row's contacts (in place); returns them, masked."""
    ours = set(house_numbers(out))
    if not ours:
        return []
    mobile, landline, alternates = out["mobile"], out["landline"], out["mobile_alternates"]
    for i in range(len(mobile)):
        kept = [v for v in [mobile[i], *str(alternates[i]).split(";")] if v and v not in ours]
        if mobile[i] in ours or (alternates[i] and any(v in ours for v in str(alternates[i]).split(";"))):
            first_mobile = next((v for v in kept if not v.startswith("0")), "")
            mobile[i] = first_mobile
            alternates[i] = ";".join(v for v in kept if v != first_mobile)
        if landline[i] in ours:
            landline[i] = next((v for v in str(alternates[i]).split(";") if v.startswith("0")), "")
    masked = [mask_value("mobile", v) for v in sorted(ours)]
    logger.info("numbers on most rows of one file taken as our own, not the leads': %s", ", ".join(masked))
    return masked
