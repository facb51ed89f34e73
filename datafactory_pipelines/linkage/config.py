"""The linkage model as data: a YAML file says what to block on, how to compare, how to train."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Level:
    label: str
    sql: str  # a condition on l.<col> and r.<col>; the first true level wins
    tf: str | None = None  # term-frequency adjust this level on the value of this column
    m: float | None = None  # starting m probability (EM refines it)
    fixed_weight: float | None = None  # a set match weight instead of a learned one (e.g. shared contacts)


@dataclass
class Comparison:
    name: str
    columns: list[str]  # a pair with any of these null (or '') on either side is 'null': no evidence
    levels: list[Level]  # strongest first; an implicit 'else' level follows
    else_m: float = 0.05


@dataclass
class Training:
    u_pairs: int = 1_000_000  # random pairs for the u probabilities
    em_blocks: list[list[str]] = field(default_factory=list)  # EM on these blocks, m of the other fields
    em_iterations: int = 25
    seed: int = 42
    # EM's blocks are formed within a seeded random sample of this many records (all of them when fewer):
    # m needs thousands of pairs, not the millions a big base's blocks hold
    em_records: int = 300_000


@dataclass
class LinkageConfig:
    unique_id: str = "record_id"
    link_type: str = "dedupe_only"  # or link_only: only pairs across source_column values
    source_column: str | None = None
    prepare: dict[str, str] = field(default_factory=dict)  # column -> SQL expression over the input
    key_stats: list[str] = field(default_factory=list)  # adds <col>__names: distinct names per value
    names_column: str | None = None
    blocking: list[list[str]] = field(default_factory=list)  # each: SQL expressions equal on both sides
    max_block_size: int = 1000
    comparisons: list[Comparison] = field(default_factory=list)
    training: Training = field(default_factory=Training)
    threshold: float = 0.99  # match probability to link a pair
    split_below: float = -4.0  # a cluster whose members score below this weight is split
    # the middle band (linkage/review.py): a pair scored from `review_from` up to `review_to` is decided by
    # the threshold as before, and shown to a person, whose answer then binds; outside it nobody is asked
    review_from: float = 0.05
    review_to: float = 0.95
    # what people's decisions taught (a review.Recalibration), set at link time from the store, never in YAML
    recalibration: Any = None
    standardize_leads: bool = False  # run the lead standardizer first (lead tables only)

    @property
    def comparison_columns(self) -> list[str]:
        return sorted({c for comp in self.comparisons for c in comp.columns})


def _comparison(raw: dict) -> Comparison:
    levels = [Level(**lvl) for lvl in raw["levels"]]
    return Comparison(name=raw["name"], columns=list(raw.get("columns") or [raw["name"]]), levels=levels,
                      else_m=float(raw.get("else_m", 0.05)))


def parse_config(data: dict) -> LinkageConfig:
    known = set(LinkageConfig.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown linkage config keys: {', '.join(sorted(unknown))}")
    data = dict(data)
    data["comparisons"] = [_comparison(c) for c in data.get("comparisons", [])]
    data["training"] = Training(**data.get("training", {}))
    data["blocking"] = [[b] if isinstance(b, str) else list(b) for b in data.get("blocking", [])]
    if "recalibration" in data:
        raise ValueError("recalibration is learned from people's decisions, not configured")
    config = LinkageConfig(**data)
    if not config.comparisons:
        raise ValueError("a linkage config needs at least one comparison")
    if not config.blocking:
        raise ValueError("a linkage config needs at least one blocking rule")
    if config.link_type not in ("dedupe_only", "link_only"):
        raise ValueError("link_type must be dedupe_only or link_only")
    if config.link_type == "link_only" and not config.source_column:
        raise ValueError("link_only needs source_column")
    return config


def load_config(path: str | Path | None = None) -> LinkageConfig:
    """A config file, or the shipped default for leads."""
    if path is None:
        text = resources.files("datafactory_pipelines.linkage").joinpath("leads.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    return parse_config(yaml.safe_load(text.replace("{role_mailbox_locals}", role_mailbox_locals())))


def role_mailbox_locals() -> str:
    """The role mailboxes (info@, hr@ …) as one SQL regex alternative, from the email standardizer's list."""
    from datafactory_pipelines.standardize.email import ROLE_LOCALS

    return "|".join(ROLE_LOCALS)  # letters, digits and '-' only: nothing to escape in YAML or RE2
