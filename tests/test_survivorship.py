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


def test_names_mobiles_emails_and_shared_mobiles() -> None:
    from datetime import datetime

    later = datetime(2025, 5, 1, 9)
    records = pd.DataFrame([
        # L1: a full name, then only a partial one; a mobile, its one-digit slip once, a cell with two mobiles
        record("L1", 1, name="王芳", mobile="13700137000", email="old@x.com",
               landline="010-1234567", collected_at="2025-01-01", source="展会"),
        record("L1", 2, name="王", name_partial=True, salutation="女士", mobile="13700137001",
               mobile_alternates="13900139000;13700137000", email="wf@x.com", collected_at="2025-02-01"),
        record("L1", 3, mobile="13700137000", email="sales@x.com", email_role=True, import_time=later, province="北京",
               address="北京市朝阳区建国路8号"),
        # L2: only a partial name; carries L1's mobile once (a family phone), so it keeps it as an alternate
        record("L2", 4, name="李", name_partial=True, salutation="先生", mobile="13700137000", source="官网"),
    ])
    leads = duckdb_golden(records, {"010-1234567"}).set_index("lead_id")
    one, two = leads.loc["L1"], leads.loc["L2"]
    assert one["name"] == "王芳" and one["salutation"] == "女士"  # a partial name never replaces a full one
    assert two["name"] == "李先生"
    assert one["mobile"] == "13700137000" and one["mobile_suspected_typos"] == "13700137001"
    assert one["mobile_alternates"] == "13900139000"  # the slip is not kept as another mobile
    assert one["email"] == "wf@x.com"  # a personal mailbox before a newer role one
    assert one["email_alternates"] == "sales@x.com;old@x.com"  # newest first
    assert one["landline_type"] == "switchboard" and one["source"] == "展会"
    assert (one["first_seen"], one["last_seen"], one["record_count"]) == ("2025-01-01", "2025-05-01", 3)
    assert one["address"] == "北京市朝阳区建国路8号" and one["province"] == "北京"  # parts of the chosen address
    assert int(one["address__record"]) == 3
    assert two["mobile"] == "" and two["mobile_alternates"] == "13700137000"  # primary where most used


def test_curating_again_changes_no_lead(tmp_path: Path) -> None:
    """Golden records and their content hashes are stable: a nightly full pass over a store the
    per-change path curated finds nothing to change, so the history gets no rows."""
    from datafactory_pipelines.sample_data import write_sample_files
    from datafactory_pipelines.store import open_store

    store = open_store(tmp_path / "leads.duckdb")
    for path in write_sample_files(tmp_path / "files", people=300, records=800, files=3, seed=4).files:
        import_file(store, path)
        relink_and_curate(store)  # the first full, then incremental
    history = len(store.history())
    leads = store.leads(include_retired=True).set_index("lead_id")
    outcome = relink_and_curate(store, full=True)
    assert outcome.path == "full" and outcome.active_leads == (leads["status"] == "active").sum() > 100
    assert (outcome.changes.created, outcome.changes.updated) == (0, 0)
    assert len(store.history()) == history
    after = store.leads(include_retired=True).set_index("lead_id")
    assert after["content_hash"].equals(leads["content_hash"])
