"""Fellegi–Sunter parameters: u from random pairs, m by EM, match weights with term frequencies.

Comparison vectors ("gammas") hold, per pair and comparison, the level that applied: -1 when a
value is missing (no evidence either way), 0 for the implicit 'else' level, and 1..L for the
configured levels, L being the strongest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from datafactory_pipelines.linkage.config import LinkageConfig

SMOOTHING = 1e-6


@dataclass
class LinkModel:
    names: list[str]  # comparison names
    labels: list[list[str]]  # per comparison: level labels, index = gamma (0 = else)
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float  # probability that two random records match
    trained_on: dict = field(default_factory=dict)
    fixed: list[dict[int, float]] = field(default_factory=list)  # per comparison: level -> set match weight

    def bayes_factors(self) -> list[np.ndarray]:
        factors = [np.clip(m, SMOOTHING, 1) / np.clip(u, SMOOTHING, 1) for m, u in zip(self.m, self.u, strict=True)]
        for k, levels in enumerate(self.fixed):
            for level, weight in levels.items():
                factors[k][int(level)] = 2.0 ** weight
        return factors

    def to_json(self) -> str:
        return json.dumps({
            "names": self.names, "labels": self.labels, "m": [m.tolist() for m in self.m],
            "u": [u.tolist() for u in self.u], "prior": self.prior, "trained_on": self.trained_on,
            "fixed": [{str(k): v for k, v in f.items()} for f in self.fixed],
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> LinkModel:
        data = json.loads(text)
        return cls(data["names"], data["labels"], [np.array(m) for m in data["m"]],
                   [np.array(u) for u in data["u"]], float(data["prior"]), data.get("trained_on", {}),
                   [{int(k): float(v) for k, v in f.items()} for f in data.get("fixed", [])])

    def describe(self) -> list[dict]:
        """Every learned number, per comparison level: what a person charts to understand the model."""
        rows = []
        factors = self.bayes_factors()
        for k, (name, labels, m, u) in enumerate(zip(self.names, self.labels, self.m, self.u, strict=True)):
            for level, label in enumerate(labels):
                rows.append({"comparison": name, "level": label, "m": float(m[level]), "u": float(u[level]),
                             "match_weight": float(np.log2(factors[k][level]))})
        return rows


def initial_model(config: LinkageConfig) -> LinkModel:
    names, labels, ms, us, fixed = [], [], [], [], []
    for comp in config.comparisons:
        names.append(comp.name)
        labels.append(["else"] + [lvl.label for lvl in reversed(comp.levels)])
        level_m = [lvl.m if lvl.m is not None else 0.5 / len(comp.levels) for lvl in reversed(comp.levels)]
        m = np.array([comp.else_m, *level_m], dtype=float)
        ms.append(m / m.sum())
        us.append(np.full(len(comp.levels) + 1, 1.0 / (len(comp.levels) + 1)))
        fixed.append({len(comp.levels) - i: lvl.fixed_weight for i, lvl in enumerate(comp.levels)
                      if lvl.fixed_weight is not None})
    return LinkModel(names, labels, ms, us, prior=1e-4, fixed=fixed)


PRIOR_PAIRS = 10.0  # the config's m values count as this many observed matching pairs


def level_frequencies(gammas: np.ndarray, levels: int, weights: np.ndarray | None = None,
                      prior: np.ndarray | None = None) -> np.ndarray:
    """Share of each level among non-null comparisons (weighted by pair probability when given).

    With a prior, its values act as PRIOR_PAIRS pseudo-observations, so a level never seen among
    the matches gets a small probability instead of zero (one disagreement is not infinite evidence).
    """
    observed = gammas >= 0
    w = np.ones(len(gammas)) if weights is None else weights
    counts = np.bincount(gammas[observed], weights=w[observed], minlength=levels + 1)[: levels + 1]
    if prior is not None:
        counts = counts + PRIOR_PAIRS * prior
    total = counts.sum()
    return (counts + SMOOTHING) / (total + SMOOTHING * len(counts)) if total > 0 else np.full(levels + 1, 1 / (levels + 1))


def estimate_u(model: LinkModel, random_gammas: np.ndarray) -> None:
    """u: how often each level occurs between two random records (nearly all non-matches)."""
    for k in range(len(model.names)):
        levels = len(model.labels[k])
        # one pseudo-pair spread over the levels: a level no random pair showed is rare, not impossible
        model.u[k] = level_frequencies(random_gammas[:, k], levels - 1, prior=np.full(levels, 1 / levels) / PRIOR_PAIRS)


def expectation_maximisation(model: LinkModel, gammas: np.ndarray, active: list[int], iterations: int,
                             prior: float = 0.5) -> tuple[list[np.ndarray], float]:
    """EM over the pairs of one training block; returns m for the `active` comparisons and the block's λ.

    Comparisons on the block's own columns are left out (within the block they agree by construction).
    Works on distinct comparison vectors with counts, so it is fast on millions of pairs.
    """
    patterns, counts = distinct_rows(gammas[:, active])
    m = [model.m[k].copy() for k in active]
    priors = [mk.copy() for mk in m]
    u = [model.u[k] for k in active]
    lam = prior
    for _ in range(iterations):
        log_match = np.full(len(patterns), np.log(lam))
        log_non = np.full(len(patterns), np.log(1 - lam))
        for j in range(len(active)):
            g = patterns[:, j]
            seen = g >= 0
            log_match[seen] += np.log(np.clip(m[j][g[seen]], SMOOTHING, 1))
            log_non[seen] += np.log(np.clip(u[j][g[seen]], SMOOTHING, 1))
        p = 1 / (1 + np.exp(np.clip(log_non - log_match, -700, 700)))
        weighted = p * counts
        lam = float(np.clip(weighted.sum() / counts.sum(), 1e-6, 1 - 1e-6))
        for j in range(len(active)):
            m[j] = level_frequencies(patterns[:, j], len(m[j]) - 1, weighted, priors[j])
    return m, lam


def distinct_rows(gammas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct comparison vectors and their counts, via one integer key per row (a 1-D sort, not a row sort)."""
    if len(gammas) == 0:
        return gammas, np.zeros(0, dtype=np.int64)
    shifted = gammas.astype(np.int64) + 1  # levels -1..L -> 0..L+1
    base = int(shifted.max()) + 1
    keys = np.zeros(len(gammas), dtype=np.int64)
    for j in range(gammas.shape[1]):
        keys = keys * base + shifted[:, j]
    unique_keys, first, counts = np.unique(keys, return_index=True, return_counts=True)
    return gammas[first], counts


def match_weights(model: LinkModel, gammas: np.ndarray, tf: dict[int, tuple[int, np.ndarray]]) -> tuple[
        np.ndarray, np.ndarray]:
    """Total match weight per pair (log2 Bayes factor plus prior) and the per-comparison contributions.

    tf: comparison index -> (level, relative frequency of the pair's value) for term-frequency levels:
    agreeing on a rare value is stronger evidence than agreeing on a common one (u is replaced by
    the value's own frequency).
    """
    contributions = np.zeros(gammas.shape, dtype=np.float32)
    factors = model.bayes_factors()
    for k, bf in enumerate(factors):
        g = gammas[:, k]
        seen = g >= 0
        contributions[seen, k] = np.log2(bf[g[seen]])
        if k in tf:
            level, freq = tf[k]
            hit = (g == level) & ~np.isnan(freq)
            contributions[hit, k] = np.log2(np.clip(model.m[k][level], SMOOTHING, 1) /
                                            np.clip(freq[hit], SMOOTHING, 1))
    return contributions.sum(axis=1) + prior_weight(model), contributions


def prior_weight(model: LinkModel) -> float:
    """The weight of the prior: what two records score before any comparison speaks."""
    return float(np.log2(model.prior / (1 - model.prior)))


def probability(weight: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.power(2.0, -np.clip(weight, -60, 60)))
