"""The lead's owner (its salesperson): imported from a 负责人 column, kept by survivorship, edited, in history."""

from pathlib import Path

import pytest

from datafactory_pipelines.ingest.headers import canonical_field
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.standardize.owner import standardize_owner
from tests.backends import both_backends, store_in
from tests.conftest import write_xlsx
from tests.test_cli import run_cli

pytestmark = both_backends

HEADER = ["姓名", "手机", "邮箱", "公司", "负责人", "登记日期"]


@pytest.mark.parametrize("header", ["负责人", "销售", "跟进人", "归属销售", "Owner", "Sales Rep", "销售负责人(必填)"])
def test_owner_headers(header: str) -> None:
    assert canonical_field(header) == "owner"


def test_owner_text_is_trimmed_and_has_no_control_or_bidi_characters() -> None:
    assert standardize_owner("  李\u200b娜\u202e \t") == "李娜"
    assert standardize_owner("Ｌｉ  Na\x07") == "Li Na"
    assert standardize_owner(None) == ""


def test_imported_owner_is_on_the_lead_and_lead_set_changes_it_with_history(
        datafactory_home: Path, tmp_path: Path) -> None:
    
    store = store_in(datafactory_home)
    path = write_xlsx(tmp_path / "线索.xlsx", [
        HEADER,
        ["王芳", "13700137000", "wf@qq.com", "星海科技", " 李娜 ", "2025-01-01"],
        ["赵敏", "13500135000", "zm@126.com", "云帆贸易", "", "2025-01-01"],
    ])
    outcome = import_file(store, path)
    assert outcome.status == "imported", outcome.error
    relink_and_curate(store)
    records = store.import_records(outcome.import_id).set_index("name")
    assert records.loc["王芳", "owner_raw"] == " 李娜 " and records.loc["王芳", "owner"] == "李娜"
    leads = store.leads().set_index("name")
    assert leads.loc["王芳", "owner"] == "李娜" and leads.loc["赵敏", "owner"] == ""
    lead_id = leads.loc["王芳", "lead_id"]
    created = store.history(lead_id)
    assert created[created["field"] == "owner"][["old_value", "new_value", "action"]].values.tolist() == [
        ["", "李娜", "create"]]

    done = run_cli(datafactory_home, "lead", "set", lead_id, "owner= 张伟 ", "--by", "王经理", "--note", "重新分配")
    assert done.returncode == 0, done.stderr
    assert "owner                  张伟" in done.stdout
    assert store.leads().set_index("lead_id").loc[lead_id, "owner"] == "张伟"
    rows = store.history(lead_id)
    owner_rows = rows[rows["field"] == "owner"]
    assert owner_rows[["old_value", "new_value", "action", "actor"]].values.tolist()[-1] == [
        "李娜", "张伟", "edit", "王经理"]
    # the edit holds over a relink: the import still says 李娜, but the operator decided later
    relink_and_curate(store, full=True)
    assert store.leads().set_index("lead_id").loc[lead_id, "owner"] == "张伟"
    # a newer list names a new owner: the newest value wins (rule `latest`, no conflict policy)
    newer = write_xlsx(tmp_path / "再分配.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "陈静", "2026-02-01"]])
    assert import_file(store, newer).status == "imported"
    relink_and_curate(store)
    assert store.leads().set_index("lead_id").loc[lead_id, "owner"] == "陈静"
    assert store.history(lead_id)["new_value"].tolist()[-1] == "陈静"
