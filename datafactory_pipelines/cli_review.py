"""`datafactory review …`: possible matches (the middle band) decided by people, one by one, by pattern,
or in an Excel workbook; every answer binds future linking and teaches the model."""

from __future__ import annotations

import argparse
import os

from datafactory_pipelines.cli_help import add_command
from datafactory_pipelines.config import Paths


def _say(text: str) -> None:
    print(text, flush=True)


def _pair(text: str) -> tuple[int, int]:
    left, sep, right = text.partition("~")
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        raise ValueError(f"a pair is written RECORD~RECORD (e.g. 1023~9697), got {text!r}")
    return int(left), int(right)


def cmd_review(args: argparse.Namespace, paths: Paths) -> int:
    import pandas as pd

    from datafactory_pipelines.match_review import (
        decide_matches,
        decide_pattern,
        pattern_groups,
        review_queue,
    )
    from datafactory_pipelines.match_review_workbook import (
        export_reviews,
        read_review_decisions,
        side_by_side,
    )
    from datafactory_pipelines.store import open_store

    store = open_store(paths.store)
    action = args.action
    if action == "list":
        groups = pattern_groups(review_queue(store))
        if groups.empty:
            _say("no possible matches wait for a person")
        for g in groups.itertuples(index=False):
            _say(f"pattern {g.pattern}: {g.pairs} pair(s), mean p {g.mean_probability:.2f}, e.g. "
                 f"{g.example_l}~{g.example_r}\n    {g.pattern_text}")
        return 0
    if action == "next":
        queue = review_queue(store).head(args.limit)
        if queue.empty:
            _say("no possible matches wait for a person")
            return 0
        for row in side_by_side(store, queue).itertuples(index=False):
            now = "linked now" if row.same_lead else f"apart now ({row.lead_l} / {row.lead_r})"
            _say(f"{row.id_l}~{row.id_r}  p={row.match_probability:.2f}  {now}  [{row.pattern_text}]")
            for side in ("left", "right"):
                values = "  ".join(f"{getattr(row, f'{side}_{f}')}" for f in ("name", "mobile", "email", "company",
                                                                              "title") if getattr(row, f"{side}_{f}"))
                _say(f"    {values}   ({getattr(row, f'{side}_origin')})")
            _say(f"    weights: {row.contributions}")
        return 0
    if action == "export":
        path, count = export_reviews(store, args.target)
        _say(f"wrote {count} possible match(es) to {path}; choose 合并 / 分开 in the last column, then "
             f"`datafactory review apply {path.name}`")
        return 0
    if action == "model":
        from datafactory_pipelines.linkage.review import Recalibration

        learned = Recalibration.from_json(store.review_recalibration())
        if learned is None:
            _say("nothing learned yet: no possible match has been decided")
            return 0
        _say(f"learned from {learned.labels} decision(s) ({learned.merges} merge, {learned.aparts} apart):")
        for term in learned.describe():
            _say(f"  {term['term']:<22} {term['value']:+.3f}")
        return 0
    decision = "merge" if args.merge else "apart" if args.apart else None
    if action == "apply":
        from pathlib import Path

        decisions = read_review_decisions(Path(args.target))
        if decisions.empty:
            _say(f"{args.target}: no row says 合并 or 分开; nothing to apply")
            return 0
    elif decision is None:
        raise ValueError("say --merge (the same person) or --apart (different people)")
    elif action == "decide":
        left, right = _pair(args.target)
        decisions = pd.DataFrame({"id_l": [left], "id_r": [right], "decision": [decision]})
    else:  # decide-pattern
        outcome = decide_pattern(store, int(args.target), decision, by=args.by, note=args.note)
        _say(f"pattern {args.target}: {outcome.decided} pair(s) decided {decision} by {args.by}; "
             f"{outcome.active_leads} active leads")
        return 0
    outcome = decide_matches(store, decisions, by=args.by, note=args.note)
    _say(f"{outcome.decided} pair(s) decided by {args.by}: {outcome.merges} merge, {outcome.aparts} apart; "
         f"the model learned from them ({outcome.requeued_leads} lead(s) of the band linked again); "
         f"{outcome.active_leads} active leads")
    return 0


def add_review_parser(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "review", "possible matches: pairs the model was unsure of, decided by a person",
                    description="Pairs scored in the middle band (between review_from and review_to in the linkage "
                                "config) are linked or kept apart by the threshold, and wait here for a person. "
                                "A decision binds all future linking, is written to both leads' history, and "
                                "teaches the model.")
    p.add_argument("action", choices=["list", "next", "decide", "decide-pattern", "export", "apply", "model"],
                   help="list: the open pairs by pattern; next: the pairs that teach the most, side by side; "
                        "decide A~B; decide-pattern PATTERN (every open pair of it); export OUT.xlsx; "
                        "apply FILE.xlsx; model: what the decisions taught")
    p.add_argument("target", nargs="?", default="", help="decide: RECORD~RECORD; decide-pattern: PATTERN; "
                                                         "export: OUT.xlsx; apply: FILE.xlsx")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--merge", action="store_true", help="decide: the two records are one person")
    choice.add_argument("--apart", action="store_true", help="decide: the two records are different people")
    p.add_argument("--limit", type=int, default=10, help="next: how many pairs to show (default 10)")
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who decides (kept in the history)")
    p.add_argument("--note", default="", help="why, in a few words (kept in the history)")
    p.set_defaults(func=cmd_review)
