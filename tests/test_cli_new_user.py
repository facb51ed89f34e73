"""The command line as a new user meets it: files applied whatever their shape, every rule problem at once,
help on every command, undone imports shown, and no silent limits."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from datafactory_pipelines.cli import build_parser, main
from datafactory_pipelines.restore import undo_import
from datafactory_pipelines.store import open_store
from tests.conftest import write_csv, write_xlsx
from tests.event_helpers import LEAD_ROWS

BROKEN_RULES = """\
rules:
  - name: bad_type
    on: lead.nothing
    when: "true"
    actions:
      - set: {field: title, value: event.data.title}
  - name: bad_cel
    on: lead.profile_updated
    when: "event.data.x == && 3"
    actions:
      - set: {field: title, value: event.data.title}
  - name: bad_action
    on: lead.profile_updated
    actions:
      - explode: {}
  - name: bad_field
    on: lead.profile_updated
    actions:
      - set: {field: favourite_colour, value: event.data.c}
"""


def _home_with_leads(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    assert main(["--home", str(home), "import", str(write_xlsx(tmp_path / "leads.xlsx", LEAD_ROWS))]) == 0
    return home


def test_conflicts_apply_takes_an_edits_csv_and_refuses_a_false_xlsx_in_words(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = _home_with_leads(tmp_path)
    store = open_store(home / "leads.duckdb")
    lead = store.leads().iloc[0]["lead_id"]
    edits = write_csv(tmp_path / "changes.csv", [["线索编号", "职位"], [lead, "采购总监"]])
    capsys.readouterr()
    assert main(["--home", str(home), "conflicts", "apply", str(edits), "--by", "李娜"]) == 0
    assert "applied 1 edits" in capsys.readouterr().out
    assert store.lead_rows([lead])[0]["title"] == "采购总监"

    fake = tmp_path / "decide.xlsx"
    fake.write_text("this is not a workbook", encoding="utf-8")
    assert main(["--home", str(home), "conflicts", "apply", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "decide.xlsx: not an Excel workbook" in err and "Traceback" not in err

    no_ids = write_xlsx(tmp_path / "list.xlsx", [["姓名", "手机"], ["王五", "13700137000"]])
    assert main(["--home", str(home), "conflicts", "apply", str(no_ids)]) == 2
    assert "no 线索编号 / lead_id column" in capsys.readouterr().err


def test_rules_check_names_every_problem_and_list_shows_the_valid_rules(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = tmp_path / "home"
    (home / "rules").mkdir(parents=True)
    (home / "rules" / "mine.yaml").write_text(BROKEN_RULES, encoding="utf-8")
    assert main(["--home", str(home), "rules", "check"]) == 1
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 4, errors
    assert any("'bad_type'" in e and "`on` must name event types" in e for e in errors)
    assert any("CEL syntax error at line 1, column 17" in e for e in errors)
    assert any("unknown action 'explode'" in e for e in errors)
    assert any("'favourite_colour' is not a lead field" in e for e in errors)
    assert all("mine.yaml:" in e for e in errors)

    assert main(["--home", str(home), "rules", "list"]) == 1
    out = capsys.readouterr().out
    assert "mobile" in out and " on " in out  # the shipped rules are still listed
    assert out.count("ERROR") == 4 and "left out" in out


def test_every_command_has_its_own_help(capsys: pytest.CaptureFixture) -> None:
    names = re.search(r"\{([a-z,-]+)\}", build_parser().format_usage()).group(1).split(",")
    assert len(names) > 20
    for name in names:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        usage, _, rest = capsys.readouterr().out.partition("\n\n")
        assert rest.strip() and not rest.lstrip().startswith(("positional arguments", "options")), \
            f"`datafactory {name} --help` has no description"
    for args, expected in ((["rules", "test", "--help"], "EVENT.json"),
                           (["link", "make", "--help"], "utm_campaign added to the target"),
                           (["serve", "--help"], "address to listen on"),
                           (["restore", "--help"], "Written as new history"),
                           (["conflicts", "--help"], "take the incoming one")):
        with pytest.raises(SystemExit):
            main(args)
        assert expected in " ".join(capsys.readouterr().out.split()), args


def test_status_and_imports_show_undone_imports_and_count_only_rejected_files(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    home = _home_with_leads(tmp_path)
    (home / "rejected" / "events").mkdir(parents=True, exist_ok=True)
    (home / "rejected" / "events" / "feed.jsonl.line-3.json").write_text("{}", encoding="utf-8")
    store = open_store(home / "leads.duckdb")
    import_id = store.imports().iloc[0]["import_id"]
    capsys.readouterr()
    undo_import(store, import_id, by="admin")
    capsys.readouterr()
    assert main(["--home", str(home), "status"]) == 0
    out = capsys.readouterr().out
    assert "rejected               0 file(s)" in out
    assert f"{import_id}  UNDONE" in out
    assert main(["--home", str(home), "imports"]) == 0
    out = capsys.readouterr().out
    assert "1 import(s), 1 undone:" in out and f"{import_id}  UNDONE" in out and "by admin" in out
