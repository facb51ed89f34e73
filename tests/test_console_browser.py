"""The console in a real browser: Debian's Chromium driven by Selenium through chromium-driver.

One walk through an operator's and an admin's day (sign in, search, edit a lead, decide a conflict group,
upload a file through the preview, undo it), checking the store and its history after each step; then what
must be refused (a forged CSRF token, a viewer's edit, a stale form) and hostile values shown as inert text.
Screenshots of the main pages go to docs/screenshots/ when DATAFACTORY_SCREENSHOTS=1 (else to tmp_path).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from datafactory_pipelines.decisions import edit_leads
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx
from tests.console_helpers import HEADER, PASSWORDS, console_home
from tests.event_helpers import running_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    store_path = console_home(tmp_path_factory.mktemp("console-browser"))
    with running_server(store_path, None) as base:
        yield base, store_path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1100,820", "--lang=zh-CN",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # never Selenium Manager
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver, tmp_path: Path, name: str) -> None:
    folder = SHOTS if os.environ.get("DATAFACTORY_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(folder / f"{name}.png"))


def _by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _submit(driver, element) -> None:
    """Click something that loads a new page, and wait for that page (a click does not wait for it)."""
    from selenium.webdriver.common.by import By

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    _wait_for_new_page(driver, old)


def _wait_for_new_page(driver, old) -> None:
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_) -> bool:
        try:
            old.is_enabled()  # answers while the old page is still there
        except WebDriverException:  # stale, or its node already gone from the new document
            return True
        return False

    WebDriverWait(driver, 60).until(gone)
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _sign_in(driver, base: str, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/console/login")
    _by_id(driver, "user").send_keys(name)
    _by_id(driver, "password").send_keys(PASSWORDS[name])
    _submit(driver, _by_id(driver, "sign-in"))
    assert _by_id(driver, "whoami").text == name


def _lead_id(store_path: Path, name: str) -> str:
    leads = open_store(store_path).leads()
    return str(leads.loc[leads["name"] == name, "lead_id"].iloc[0])


def test_an_operators_and_an_admins_day(site, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    base, store_path = site
    driver = browser
    driver.get(f"{base}/console/login")
    _shot(driver, tmp_path, "login")
    _sign_in(driver, base, "li")
    assert _by_id(driver, "active-leads").text == "5"
    _shot(driver, tmp_path, "overview")

    # find a lead by pinyin, open it
    _submit(driver, _by_id(driver, "nav-search"))
    _by_id(driver, "q").send_keys("wangfang")
    _submit(driver, _by_id(driver, "search-button"))
    assert _by_id(driver, "result-count").text == "1"
    _shot(driver, tmp_path, "search")
    _submit(driver, driver.find_element(By.CLASS_NAME, "lead-link"))
    wang = _lead_id(store_path, "王芳")
    assert _by_id(driver, "lead-id").text == wang
    assert "展会2026.xlsx" in _by_id(driver, "golden").text  # provenance: the file behind the values

    # edit it: a field, with a note; the store and the history name the operator
    Select(_by_id(driver, "edit-field")).select_by_value("owner")
    _by_id(driver, "edit-value").send_keys("销售张三")
    _by_id(driver, "edit-note").send_keys("电话回访后确认")
    _submit(driver, _by_id(driver, "edit-save"))
    assert "owner set" in _by_id(driver, "done").text
    store = open_store(store_path)
    assert store.lead_rows([wang])[0]["owner"] == "销售张三"
    last = store.history(wang).iloc[-1]
    assert (last["field"], last["actor"], last["cause"]) == ("owner", "li", "电话回访后确认")
    first_row = driver.find_elements(By.CLASS_NAME, "history-row")[0]  # newest first
    assert "li" in first_row.find_element(By.CLASS_NAME, "actor").text
    _shot(driver, tmp_path, "lead")

    # decide a conflict group at once
    _submit(driver, _by_id(driver, "nav-conflicts"))
    _shot(driver, tmp_path, "conflicts")
    _submit(driver, driver.find_element(By.CLASS_NAME, "group-link"))
    group = _by_id(driver, "group-id").text
    members = open_store(store_path).conflicts_in_group(group)
    assert len(members) == 2
    _by_id(driver, "group-note").send_keys("新名片")
    _submit(driver, _by_id(driver, "take-incoming"))
    assert "2" in _by_id(driver, "done").text
    store = open_store(store_path)
    decided = store.conflicts_by_id(members["conflict_id"].tolist())
    assert set(decided["status"]) == {"decided"} and set(decided["decided_by"]) == {"li"}
    assert set(decided["decision"]) == {"incoming"}
    assert store.lead_rows([wang])[0]["title"] == "销售总监"
    assert store.history(wang).iloc[-1]["action"] == "conflict decision"

    # upload a file: preview first (nothing saved), then import it
    before = len(open_store(store_path).imports())
    upload = write_xlsx(tmp_path / "新展会.xlsx", [
        HEADER, ["周杰", "13300133000", "zj@qq.com", "蓝鲸科技", "经理", "新展会", "2026-05-01"],
        ["孙丽", "", "", "无联系公司", "助理", "新展会", "2026-05-01"],
    ])
    _submit(driver, _by_id(driver, "nav-imports"))
    _by_id(driver, "upload-file").send_keys(str(upload))
    _submit(driver, _by_id(driver, "upload-button"))
    assert (_by_id(driver, "preview-reachable").text, _by_id(driver, "preview-quarantined").text) == ("1", "1")
    assert "mobile" in _by_id(driver, "preview-roles").text
    _shot(driver, tmp_path, "preview")
    assert len(open_store(store_path).imports()) == before
    _submit(driver, _by_id(driver, "import-now"))
    import_id = _by_id(driver, "import-id").text
    assert _by_id(driver, "effect-created").text == "1"
    store = open_store(store_path)
    assert store.import_row(import_id)["imported_by"] == "li"
    zhou = _lead_id(store_path, "周杰")
    assert store.history(zhou).iloc[0]["actor"] == "li"
    assert not driver.find_elements(By.ID, "undo-link")  # operators may not undo

    # the admin undoes it, after seeing what that changes
    _sign_in(driver, base, "boss")
    driver.get(f"{base}/console/imports/{import_id}")
    _submit(driver, _by_id(driver, "undo-link"))
    assert _by_id(driver, "undo-records").text == "2" and zhou in driver.page_source
    _shot(driver, tmp_path, "undo")
    assert open_store(store_path).lead_rows([zhou])[0]["status"] == "active"  # the preview changed nothing
    _submit(driver, _by_id(driver, "undo-confirm"))
    assert driver.find_elements(By.ID, "done"), driver.find_element(By.TAG_NAME, "main").text
    assert "undone" in _by_id(driver, "done").text
    store = open_store(store_path)
    assert store.import_row(import_id)["undone_by"] == "boss"
    assert store.lead_rows([zhou])[0]["status"] != "active"
    assert store.history(zhou).iloc[-1]["actor"] == "boss"
    driver.get(f"{base}/console/imports?lang=en")
    row = next(r for r in driver.find_elements(By.CLASS_NAME, "import-row") if import_id in r.text)
    assert "Undone" in row.find_element(By.CLASS_NAME, "import-status").text
    _shot(driver, tmp_path, "imports")
    driver.get(f"{base}/console/?lang=zh")


def test_forged_viewer_and_stale_forms_are_refused_and_hostile_values_are_text(site, browser) -> None:
    from selenium.webdriver.common.by import By

    base, store_path = site
    driver = browser
    zhao = _lead_id(store_path, "赵敏")

    # a forged CSRF token
    _sign_in(driver, base, "li")
    driver.get(f"{base}/console/leads/{zhao}")
    driver.execute_script("document.querySelector('#edit-form input[name=csrf]').value = 'forged'")
    _by_id(driver, "edit-value").send_keys("伪造")
    _submit(driver, _by_id(driver, "edit-save"))
    assert "表单已失效" in driver.page_source
    assert open_store(store_path).lead_rows([zhao])[0]["title"] == "采购经理"

    # a stale form: someone else changes the lead after the page was opened
    driver.get(f"{base}/console/leads/{zhao}")
    edit_leads(open_store(store_path), [{"lead_id": zhao, "field": "title", "value": "采购总监"}], by="someone else")
    _by_id(driver, "edit-value").send_keys("采购主管")
    _submit(driver, _by_id(driver, "edit-save"))
    assert "stale" in _by_id(driver, "detail").text
    assert open_store(store_path).lead_rows([zhao])[0]["title"] == "采购总监"

    # a viewer: masked contacts, no edit form, and a hand-made edit form refused by the server
    _sign_in(driver, base, "kan")
    driver.get(f"{base}/console/leads/{zhao}")
    assert "13500135000" not in driver.page_source and "135****5000" in driver.page_source
    assert not driver.find_elements(By.ID, "edit-form")
    csrf = driver.find_element(By.CSS_SELECTOR, "header input[name=csrf]").get_attribute("value")
    version = open_store(store_path).lead_rows([zhao])[0]
    from datafactory_pipelines.console.lead_edits import lead_version

    old = driver.find_element(By.TAG_NAME, "html")
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
        "for (const [k, v] of Object.entries(arguments[1])) {"
        "  const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); }"
        "document.body.appendChild(f); f.submit();",
        f"/console/leads/{zhao}/edit",
        {"csrf": csrf, "version": lead_version(version), "action": "set", "field": "title", "value": "查看者改的"})
    _wait_for_new_page(driver, old)
    assert "你的角色不能做这件事" in driver.page_source
    assert open_store(store_path).lead_rows([zhao])[0]["title"] == "采购总监"

    # hostile values: a script tag and bidi controls are shown as text, never run or obeyed
    _sign_in(driver, base, "li")
    driver.get(f"{base}/console/search?q=13600136000")
    _submit(driver, driver.find_element(By.CLASS_NAME, "lead-link"))
    assert driver.execute_script("return window.pwned") is None
    page_text = driver.find_element(By.TAG_NAME, "body").text
    assert "<script>window.pwned=1</script>" in page_text
    assert "<U+202E>evil<U+202C> Ltd" in page_text and "\u202e" not in page_text

