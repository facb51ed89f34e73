"""Possible matches, decided by people: the queue grouped by pattern, decisions one by one or a whole
pattern at once, and the model recalibrated from every answer (linkage/review.py says how).

Every decision is one change: kept forever (`match_decisions`), written to both leads' history, binding
from then on (merge: linked whatever the score; apart: never linked, as an unmerge), and the two
leads linked again at once. A pair once decided is never asked again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datafactory_pipelines.linkage import LinkModel, load_config
from datafactory_pipelines.linkage.engine import default_model
from datafactory_pipelines.linkage.model import prior_weight
from datafactory_pipelines.linkage.review import (
    DECISIONS,
    Recalibration,
    describe_pattern,
    fit_recalibration,
    suggestion_order,
)
from datafactory_pipelines.store import LeadStore

log = logging.getLogger(__name__)

DECISION_WORDS = {"merge": "merge", "same": "merge", "合并": "merge", "同一人": "merge", "是": "merge",
                  "apart": "apart", "different": "apart", "分开": "apart", "不是同一人": "apart", "否": "apart"}


class ReviewError(ValueError):
    """A decision that cannot be applied; nothing was changed."""


@dataclass
class ReviewOutcome:
    decided: int
    merges: int
    aparts: int
    recalibration: Recalibration | None
    requeued_leads: int
    active_leads: int


def _model(store: LeadStore) -> LinkModel:
    saved = store.link_model()
    return LinkModel.from_json(saved) if saved else default_model()


def review_queue(store: LeadStore) -> pd.DataFrame:
    """The open pairs, those that teach the most first, each with its pattern in words."""
    model = _model(store)
    queue = suggestion_order(store.open_match_reviews())
    if queue.empty:
        return queue
    words = {int(p): describe_pattern(int(p), model.names, model.labels) for p in queue["pattern"].unique()}
    queue["pattern_text"] = queue["pattern"].map(lambda p: words[int(p)])
    return queue


def pattern_groups(queue: pd.DataFrame) -> pd.DataFrame:
    """One row per pattern of the open queue: pattern, pattern_text, pairs, mean probability, an example."""
    if queue.empty:
        return pd.DataFrame(columns=["pattern", "pattern_text", "pairs", "mean_probability", "example_l",
                                     "example_r"])
    first = queue.drop_duplicates("pattern")
    counts = queue.groupby("pattern").agg(pairs=("id_l", "size"), mean_probability=("match_probability", "mean"))
    out = first[["pattern", "pattern_text", "id_l", "id_r"]].rename(columns={"id_l": "example_l", "id_r": "example_r"})
    out = out.merge(counts, left_on="pattern", right_index=True)
    return out.sort_values(["pairs", "pattern"], ascending=[False, True]).reset_index(drop=True)[
        ["pattern", "pattern_text", "pairs", "mean_probability", "example_l", "example_r"]]


def normalize_decision(word: object, where: str) -> str:
    decision = DECISION_WORDS.get(str(word).strip().lower()) or DECISION_WORDS.get(str(word).strip())
    if decision not in DECISIONS:
        raise ReviewError(f"{where}: decision must be merge (合并) or apart (分开), got {word!r}")
    return decision


def decide_pattern(store: LeadStore, pattern: int, decision: str, by: str, note: str = "") -> ReviewOutcome:
    """Every open pair of one pattern decided the same way (the person saw the pattern and its examples)."""
    queue = store.open_match_reviews()
    pairs = queue[queue["pattern"].astype("int64") == int(pattern)]
    if pairs.empty:
        raise ReviewError(f"no open pair has pattern {pattern}")
    return decide_matches(store, pairs.assign(decision=decision)[["id_l", "id_r", "decision"]], by=by, note=note)


def decide_matches(store: LeadStore, decisions: pd.DataFrame, by: str, note: str = "") -> ReviewOutcome:
    """decisions: id_l, id_r, decision (merge | apart, or 合并 / 分开). All checked first (every pair open:
    a decided pair is never asked again); then kept, learned from and linked again, in one change."""
    from datafactory_pipelines.pipeline import relink_and_curate

    if not by.strip():
        raise ReviewError("a decision names who made it (--by)")
    with store.exclusive(f"match review by {by}: {len(decisions)} pair(s)", atomic=True):
        chosen = _checked(store, decisions)
        recalibration, requeue = _learn(store, chosen)
        store.record_match_decisions(chosen, by=by, note=note, recalibration=recalibration.to_json(),
                                     requeue=requeue)
        outcome = relink_and_curate(store, actor=by, cause=note or "match review", action="review")
    merges = int((chosen["decision"] == "merge").sum())
    log.info("match review by %s: %d merge(s), %d apart", by, merges, len(chosen) - merges)
    return ReviewOutcome(len(chosen), merges, len(chosen) - merges, recalibration, len(requeue),
                         outcome.active_leads)


def _checked(store: LeadStore, decisions: pd.DataFrame) -> pd.DataFrame:
    if decisions.empty:
        raise ReviewError("no decisions given")
    given = decisions.copy()
    given["id_l"], given["id_r"] = (np.minimum(given["id_l"].astype("int64"), given["id_r"].astype("int64")),
                                    np.maximum(given["id_l"].astype("int64"), given["id_r"].astype("int64")))
    given["decision"] = [normalize_decision(d, f"pair {a}~{b}")
                         for a, b, d in zip(given["id_l"], given["id_r"], given["decision"], strict=True)]
    if given.duplicated(["id_l", "id_r"]).any():
        raise ReviewError("a pair is decided twice in one go")
    open_pairs = store.open_match_reviews()
    merged = given.merge(open_pairs[["id_l", "id_r", "pattern", "match_weight", "contributions"]],
                         on=["id_l", "id_r"], how="left", indicator=True)
    missing = merged[merged["_merge"] != "both"]
    if len(missing):
        shown = ", ".join(f"{a}~{b}" for a, b in missing[["id_l", "id_r"]].head(5).itertuples(index=False))
        raise ReviewError(f"{len(missing)} pair(s) are not open for review (decided already, or their records "
                          f"are in one lead now, or retired): {shown}; nothing was changed")
    return merged.drop(columns="_merge")


def contribution_matrix(contributions: pd.Series, names: list[str]) -> np.ndarray:
    parsed = [json.loads(text or "{}") for text in contributions]
    return np.array([[float(p.get(name, 0.0)) for name in names] for p in parsed], dtype=np.float64).reshape(
        len(parsed), len(names))


def _learn(store: LeadStore, chosen: pd.DataFrame) -> tuple[Recalibration, list[str]]:
    """Every label so far (earlier decisions and these) fitted again; the leads of the band queued when the
    recalibration moved (their pairs may be decided differently now)."""
    names = [c.name for c in load_config().comparisons]
    earlier = store.match_decisions()
    earlier = earlier[~earlier.set_index(["id_l", "id_r"]).index.isin(chosen.set_index(["id_l", "id_r"]).index)]
    labelled = pd.concat([earlier[["decision", "contributions"]], chosen[["decision", "contributions"]]],
                         ignore_index=True)
    fitted = fit_recalibration(contribution_matrix(labelled["contributions"], names), prior_weight(_model(store)),
                               (labelled["decision"] == "merge").to_numpy(), names)
    before = Recalibration.from_json(store.review_recalibration())
    moved = before is None or not np.allclose([before.intercept, *before.coefficients],
                                              [fitted.intercept, *fitted.coefficients], atol=1e-3)
    return fitted, (store.band_leads() if moved else [])
