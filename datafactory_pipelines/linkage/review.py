"""Possible matches: the Fellegi–Sunter middle band, shown to people, decided by them, and learned from.

A scored pair whose match probability lies in the middle band (`review_from` .. `review_to`, around the
merge threshold) is linked or kept apart by the threshold as before, and queued for a person: nothing
waits for people, and people can correct what the model was unsure of. A person decides merge or keep
apart; the decision binds all future linking (merge: linked whatever the score; apart: never linked, as
an unmerge) and is a label.

Pairs are grouped by their *pattern*: the level each comparison reached (mobile exact, name missing,
company else …), so that a person can decide a whole pattern at once.

The labels adjust the model where it was unsure, as dedupe's active learning does: a logistic
recalibration of the middle band's weights, fitted by maximum a posteriori on the labelled pairs with
a prior centred on the Fellegi–Sunter model itself (intercept 0, every comparison's contribution
weighted 1). With no labels it changes nothing; with a few dozen it moves the weights of the patterns
they speak for; it never touches a pair outside the band, and never lowers one below the band (so a
label cannot make two records contradict each other and split a lead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

PATTERN_BASE = 16  # levels -1..14 per comparison, one hexadecimal digit each: a stable int64 key
LN2 = float(np.log(2.0))
PRIOR_STRENGTH = 4.0  # how strongly the recalibration stays at the model (a Gaussian prior's precision):
# a handful of answers moves a weight by a fraction of a bit, a few dozen consistent ones by bits
DECISIONS = ("merge", "apart")


def weight_of(probability: float) -> float:
    """The match weight (log2 odds) of a probability."""
    p = min(max(float(probability), 1e-12), 1 - 1e-12)
    return float(np.log2(p / (1 - p)))


def pattern_keys(gammas: np.ndarray) -> np.ndarray:
    """One int64 per pair naming the level each comparison reached (the first comparison is the most
    significant digit); the same pattern gets the same key in every change and every store."""
    keys = np.zeros(len(gammas), dtype=np.int64)
    for j in range(gammas.shape[1] if gammas.ndim == 2 else 0):
        keys = keys * PATTERN_BASE + (gammas[:, j].astype(np.int64) + 1)
    return keys


def pattern_levels(key: int, comparisons: int) -> list[int]:
    """The gamma of each comparison in a pattern key (-1: missing on a side, 0: else, 1..L: a level)."""
    levels = []
    for _ in range(comparisons):
        levels.append(int(key % PATTERN_BASE) - 1)
        key //= PATTERN_BASE
    return levels[::-1]


def describe_pattern(key: int, names: list[str], labels: list[list[str]]) -> str:
    """A pattern in words: what agrees first, then what differs, then what is missing
    ("mobile exact, company exact · name differs · email missing")."""
    agree, differ, missing = [], [], []
    for name, level, level_labels in zip(names, pattern_levels(int(key), len(names)), labels, strict=True):
        if level < 0:
            missing.append(name)
        elif level == 0:
            differ.append(name)
        else:
            agree.append(f"{name} {level_labels[level] if level < len(level_labels) else level}")
    parts = [", ".join(agree) or "nothing agrees"]
    if differ:
        parts.append(", ".join(differ) + " differ" + ("s" if len(differ) == 1 else ""))
    if missing:
        parts.append(", ".join(missing) + " missing")
    return " · ".join(parts)


@dataclass
class Recalibration:
    """Weights learned from people's decisions, for the middle band only: w' = prior + b0 + Σ b_k·c_k
    where c_k is comparison k's contribution. The identity (b0 = 0, b = 1) is the model unchanged."""

    names: list[str]
    intercept: float = 0.0
    coefficients: list[float] = field(default_factory=list)
    merges: int = 0
    aparts: int = 0

    @property
    def labels(self) -> int:
        return self.merges + self.aparts

    def to_json(self) -> str:
        return json.dumps({"names": self.names, "intercept": self.intercept, "coefficients": self.coefficients,
                           "merges": self.merges, "aparts": self.aparts}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | None) -> Recalibration | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(list(data["names"]), float(data["intercept"]), [float(c) for c in data["coefficients"]],
                   int(data.get("merges", 0)), int(data.get("aparts", 0)))

    def weights(self, contributions: np.ndarray, prior_weight: float) -> np.ndarray:
        return prior_weight + self.intercept + contributions.astype(np.float64) @ np.asarray(self.coefficients)

    def describe(self) -> list[dict]:
        rows = [{"term": "intercept (bits)", "value": round(self.intercept, 3)}]
        rows += [{"term": f"× {name}", "value": round(c, 3)} for name, c in zip(self.names, self.coefficients,
                                                                                 strict=True)]
        return rows


def recalibrate_band(weights: np.ndarray, contributions: np.ndarray, prior_weight: float,
                     recalibration: Recalibration | None, review_from: float, review_to: float) -> np.ndarray:
    """The pairs' weights with the recalibration applied to those in the middle band, never below it."""
    if recalibration is None or not recalibration.labels or len(weights) == 0:
        return weights
    low, high = weight_of(review_from), weight_of(review_to)
    band = (weights >= low) & (weights < high)
    if not band.any():
        return weights
    out = weights.copy()
    out[band] = np.maximum(recalibration.weights(contributions[band], prior_weight), low)
    return out


def fit_recalibration(contributions: np.ndarray, prior_weight: float, merged: np.ndarray, names: list[str],
                      strength: float = PRIOR_STRENGTH, iterations: int = 30) -> Recalibration:
    """MAP logistic regression of the labels on the pairs' contributions (in bits), with a Gaussian prior
    centred on the model (intercept 0, coefficients 1). Newton's method; a few dozen labels suffice."""
    x = np.column_stack([np.ones(len(contributions)), contributions.astype(np.float64)])
    y = merged.astype(np.float64)
    centre = np.concatenate([[0.0], np.ones(x.shape[1] - 1)])
    # the prior penalizes what a change does to the weights, in bits: a comparison whose contributions are
    # large (a rare mobile: 20 bits) moves its coefficient less for the same evidence than a small one
    penalty = strength * np.concatenate([[1.0], 1.0 + np.mean(x[:, 1:] ** 2, axis=0)])
    beta = centre.copy()
    for _ in range(iterations):
        z = LN2 * (prior_weight + x @ beta)
        p = 1 / (1 + np.exp(-np.clip(z, -60, 60)))
        gradient = LN2 * x.T @ (y - p) - penalty * (beta - centre)
        hessian = -(LN2 ** 2) * (x.T * (p * (1 - p))) @ x - np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        beta = beta - step
        if np.max(np.abs(step)) < 1e-6:
            break
    return Recalibration(list(names), float(beta[0]), [float(b) for b in beta[1:]],
                         merges=int(y.sum()), aparts=int(len(y) - y.sum()))


def band_pairs(pairs: pd.DataFrame, review_from: float, review_to: float) -> pd.DataFrame:
    """The scored pairs in the middle band: id_l, id_r, match_weight, match_probability, pattern and the
    w_<comparison> contributions (a person sees what each field said)."""
    if pairs.empty or "pattern" not in pairs.columns:
        return pd.DataFrame(columns=["id_l", "id_r", "match_weight", "match_probability", "pattern"])
    band = pairs[(pairs["match_probability"] >= review_from) & (pairs["match_probability"] < review_to)]
    keep = ["id_l", "id_r", "match_weight", "match_probability", "pattern",
            *[c for c in band.columns if c.startswith("w_")]]
    band = band[keep].reset_index(drop=True)
    # a pair is named smaller record id first, whichever way the engine held it
    low = np.minimum(band["id_l"].to_numpy(), band["id_r"].to_numpy())
    band["id_r"] = np.maximum(band["id_l"].to_numpy(), band["id_r"].to_numpy())
    band["id_l"] = low
    return band


def suggestion_order(reviews: pd.DataFrame) -> pd.DataFrame:
    """The open pairs, those that teach the most first: patterns many open pairs share and the model is
    least sure of (probability nearest one half), one pair per pattern before a pattern's second pair."""
    if reviews.empty:
        return reviews
    ordered = reviews.copy()
    ordered["pattern_size"] = ordered.groupby("pattern")["id_l"].transform("size")
    uncertainty = 1 - 2 * (ordered["match_probability"] - 0.5).abs()
    ordered["teaching"] = uncertainty * np.log2(1 + ordered["pattern_size"])
    ordered = ordered.sort_values(["teaching", "id_l", "id_r"], ascending=[False, True, True])
    ordered["rank_in_pattern"] = ordered.groupby("pattern").cumcount()
    return ordered.sort_values(["rank_in_pattern", "teaching", "id_l", "id_r"],
                               ascending=[True, False, True, True]).reset_index(drop=True)
