"""Golden records: rules per field, provenance for every golden value."""

import json
from pathlib import Path

import pandas as pd

from datafactory_pipelines import survivorship_sql
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.survivorship import survivorship_rules
from tests.conftest import write_xlsx
from tests.survivorship_cases import duckdb_golden, record

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "来源", "登记日期"]


def test_job_change_and_fullest_company_spelling_with_provenance(store, tmp_path: Path) -> None:
    import_file(store, write_xlsx(tmp_path / "old.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "深圳星海科技有限公司", "销售经理", "展会", "2025-01-05"],
    ]))
    import_file(store, write_xlsx(tmp_path / "new.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售总监", "官网表单", "2025-09-01"],
    ]))
    relink_and_curate(store)
    lead = store.leads().iloc[0]
    assert lead["title"] == "销售总监"  # the newest title wins
    assert lead["company"] == "深圳星海科技有限公司"  # same company, spelled as fully as any record spells it
    provenance = json.loads(lead["provenance"])
    assert provenance["title"] == {"record": 2, "file": "new.xlsx", "row": 2, "source": "官网表单",
                                   "at": "2025-09-01", "rule": "latest"}
    assert provenance["company"]["file"] == "old.xlsx" and provenance["company"]["rule"] == "latest_spelled_fully"


def test_rules(monkeypatch) -> None:
    records = pd.DataFrame([
        record("L1", 1, title="经理", source="event_verified", address="北京"),
        record("L1", 2, title="总监", source="展会", address="北京市朝阳区建国路8号"),
        record("L1", 3, title="经理", source="展会", address="北京朝阳"),
        record("L1", 4, title="", source="展会", address=""),
    ])

    def chosen(rule: str, field: str) -> tuple[str, int]:
        rules = survivorship_rules()
        monkeypatch.setattr(survivorship_sql, "survivorship_rules",
                            lambda: {**rules, "fields": {**rules["fields"], field: rule}})
        lead = duckdb_golden(records).iloc[0]
        return lead[field], int(lead[f"{field}__record"])

    assert chosen("latest", "title") == ("经理", 3)
    assert chosen("most_frequent", "title") == ("经理", 3)
    assert chosen("trusted", "title") == ("经理", 1)
    assert chosen("most_complete", "address") == ("北京市朝阳区建国路8号", 2)
