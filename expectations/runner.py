"""Validate a DataFrame against a suite with an ephemeral GX context (dagster-ge does not support GX 1.x)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from datafactory_pipelines.masking import mask_value

logging.getLogger("great_expectations").setLevel(logging.WARNING)


@dataclass
class SuiteOutcome:
    success: bool
    table: pd.DataFrame  # expectation, column, success, unexpected_count, examples (masked)

    @property
    def failed(self) -> pd.DataFrame:
        return self.table[~self.table["success"]]


def validate(frame: pd.DataFrame, suite: list[tuple[str, dict]], name: str) -> SuiteOutcome:
    import great_expectations as gx  # slow to import: only when a check runs
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # this GX module sets its own logger to INFO on import and announces every ephemeral context's
    # temporary docs folder (22 lines in the demo); our summary says what was checked
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(f"{name}_source")
    batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all").get_batch(
        batch_parameters={"dataframe": frame}
    )
    expectation_suite = gx.ExpectationSuite(name=name)
    for class_name, kwargs in suite:
        expectation_suite.add_expectation(getattr(gx.expectations, class_name)(**kwargs))
    result = batch.validate(expectation_suite, result_format="SUMMARY")
    rows = []
    for item in result.results:
        column = item.expectation_config.kwargs.get("column", "")
        details = item.result or {}
        examples = details.get("partial_unexpected_list") or []
        rows.append({
            "expectation": item.expectation_config.type,
            "column": column,
            "success": bool(item.success),
            "unexpected_count": int(details.get("unexpected_count") or 0),
            "examples": ", ".join(mask_value(column, v) for v in examples[:5]),
        })
    return SuiteOutcome(bool(result.success), pd.DataFrame(rows))
