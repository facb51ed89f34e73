"""Golden records: rules per field, provenance for every golden value."""

import json
from pathlib import Path

import pandas as pd

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.survivorship import choose
from tests.conftest import write_xlsx

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


def test_rules() -> None:
    ordered = pd.DataFrame({
        "lead_id": ["L1"] * 4, "record_id": [1, 2, 3, 4], "_rank": [0, 1, 2, 3],
        "title": ["经理", "总监", "经理", ""], "source": ["event_verified", "展会", "展会", "展会"],
        "address": ["北京", "北京市朝阳区建国路8号", "北京朝阳", ""],
    })
    assert choose(ordered, "title", "latest").loc["L1"].tolist() == ["经理", 3]
    assert choose(ordered, "title", "most_frequent").loc["L1"].tolist() == ["经理", 3]
    assert choose(ordered, "title", "trusted").loc["L1"].tolist() == ["经理", 1]
    assert choose(ordered, "address", "most_complete").loc["L1", "value"] == "北京市朝阳区建国路8号"
