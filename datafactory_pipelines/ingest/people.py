"""Whose name is the lead's, and which columns are about us rather than the client.

A row often holds several people: the lead, who referred them, the salesperson who follows them up.
A person reads which name is the lead's from the row itself: the lead's name goes with the row's
contacts (the same name comes back with the same phone), while a referrer's or owner's name comes
back with many different people's contacts. So the choice is made from content (how well each name
column agrees with the contact columns), then position (the name next to the contacts); a header
word the product knows (联系人, 推荐人) adds its vote, a header word it does not know adds nothing.

Columns about the seller (分公司, 部门, 区域, 事业部 …, or values such as 重庆分公司 / 华东大区 /
销售二部) never become the client's company or name: they are kept as extra attributes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

AGREEMENT_SAMPLE = 5000  # rows spread over the sheet: enough to see names repeat
CLEAR_MARGIN = 0.15  # agreement this much better decides alone; closer calls go to header, then position
OUR_VALUE_SHARE = 0.6  # a column whose values are mostly our own units is about us
# a value shared by more rows than this is a number of ours (a hotline, a switchboard), not the lead's
SHARED_CONTACT_SHARE = 0.3

_OUR_UNIT = re.compile(
    r"^(?:[\u4e00-\u9fff]{2,4}(?:分公司|子公司|分部|办事处|营业部|事业部|分行|支行|大区|区域|片区|战区|分中心|分院)"
    r"|(?:华东|华南|华北|华中|华西|西南|西北|东北|东南|中南)(?:区|大区|地区|区域|片区)?"
    r"|(?:销售|市场|客服|电销|网销|直销|渠道|大客户|商务|业务|客户)[一二三四五六七八九十\d]*(?:部|组|科|团队|中心|处)"
    r"|[一二三四五六七八九十\d]+(?:部|组|区|队|科))$")


def looks_like_our_unit(text: str) -> bool:
    """重庆分公司, 华东大区, 销售二部, 电销3组: a unit of the selling company, not a client firm."""
    return bool(_OUR_UNIT.match(re.sub(r"\s", "", text)))


def _spread_rows(n: int, limit: int) -> np.ndarray:
    return np.arange(n) if n <= limit else np.linspace(0, n - 1, limit).astype(int)


def _contact_key(values: pd.Series) -> pd.Series:
    """A contact cell as a comparable key: its digits when it holds a number, else its lower-case text."""
    text = values.astype(str).str.strip()
    digits = text.str.replace(r"\D", "", regex=True)
    return text.str.lower().where(digits.str.len() < 7, digits.str[-11:])


def name_contact_agreement(body: pd.DataFrame, name_index: int, contact_indices: list[int]) -> float:
    """How well a name column goes with the row's contacts: over rows holding both, the share whose
    contact is the one its name most often comes with. The lead's name scores near 1 (a name seen again
    comes back with the same phone); an owner's or referrer's name, seen with many people's contacts, scores
    low. Values shared by a large part of the rows (our hotline) say nothing and are left out. Without
    contacts, the share of distinct names stands in."""
    rows = _spread_rows(len(body), AGREEMENT_SAMPLE)
    names = body.iloc[rows, name_index].astype(str).str.replace(r"\s", "", regex=True)
    agree, total = 0, 0
    for index in contact_indices:
        keys = _contact_key(body.iloc[rows, index])
        usable = (names != "") & (keys != "")
        if usable.sum() < 2:
            continue
        counts = keys[usable].value_counts()
        common = set(counts.index[counts > max(2, SHARED_CONTACT_SHARE * usable.sum())])
        usable &= ~keys.isin(common)
        if usable.sum() < 2:
            continue
        pairs = pd.DataFrame({"name": names[usable].to_numpy(), "key": keys[usable].to_numpy()})
        modal = pairs.groupby(["name", "key"]).size().groupby(level=0).max()
        agree += int(modal.sum())
        total += len(pairs)
    if total:
        return agree / total
    filled = names[names != ""]
    return filled.nunique() / len(filled) if len(filled) else 0.0


@dataclass
class NameCandidate:
    index: int
    header: str
    pinned: bool
    known_as_name: bool  # the header is a word the product knows for the lead's name (联系人, 姓名 …)
    agreement: float
    distance: int  # columns between this one and the nearest contact column
    name_share: float
    distinct: int
    filled: int

    def describe(self) -> str:
        return (f"{self.distinct} names over {self.filled} rows, name and contact agree in {self.agreement:.0%} "
                f"of rows")


def rank_name_columns(body: pd.DataFrame, candidates: list[tuple[int, str, bool, bool, float]],
                      contact_indices: list[int]) -> list[NameCandidate]:
    """Candidates (index, header, pinned, known_as_name, name_share) ranked, the lead's name first."""
    ranked = []
    rows = _spread_rows(len(body), AGREEMENT_SAMPLE)
    for index, header, pinned, known, share in candidates:
        values = body.iloc[rows, index].astype(str).str.strip()
        filled = values[values != ""]
        distance = min((abs(index - c) for c in contact_indices), default=0)
        # one candidate is the lead's name whatever it agrees with: nothing to measure
        agreement = name_contact_agreement(body, index, contact_indices) if len(candidates) > 1 else 1.0
        ranked.append(NameCandidate(index, header, pinned, known, agreement, distance, share,
                                    int(filled.nunique()), len(filled)))
    if not ranked:
        return []
    top = max(ranked, key=lambda c: (c.pinned, c.agreement))
    close = [c for c in ranked if c.pinned == top.pinned and top.agreement - c.agreement < CLEAR_MARGIN]
    lead = max(close, key=lambda c: (c.known_as_name, -c.distance, c.name_share, -c.index))
    rest = sorted((c for c in ranked if c is not lead), key=lambda c: -c.agreement)
    return [lead, *rest]


def why_lead(lead: NameCandidate, others: list[NameCandidate]) -> str:
    """The import's words for the choice."""
    if not others:
        return ""
    best_other = others[0]
    if lead.pinned:
        return "pinned by operator as the lead's name"
    if lead.agreement - best_other.agreement >= CLEAR_MARGIN:
        return (f"the lead's name: it goes with the row's contacts ({lead.describe()}; "
                f"{best_other.header!r}: {best_other.describe()})")
    if lead.known_as_name and not best_other.known_as_name:
        return f"the lead's name: names and contacts agree alike, and its header names the lead ({lead.header!r})"
    return "the lead's name: names and contacts agree alike, and it stands nearest the contacts"


def is_owner_like(candidate: NameCandidate) -> bool:
    """A few names, each over many rows (five or more on average: a salesperson follows dozens of leads, a
    customer refers a handful of friends), not agreeing with the contacts: the sales team."""
    if not candidate.filled:
        return False
    return candidate.distinct / candidate.filled <= 0.2 and candidate.agreement < 0.6 and candidate.distinct <= max(
        30, candidate.filled // 20)


__all__ = ["NameCandidate", "is_owner_like", "looks_like_our_unit", "name_contact_agreement", "rank_name_columns",
           "why_lead"]
