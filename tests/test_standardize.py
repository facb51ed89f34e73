import pandas as pd
import pytest

from datafactory_pipelines.standardize import standardize_frame
from datafactory_pipelines.standardize.address import standardize_address
from datafactory_pipelines.standardize.company import standardize_company
from datafactory_pipelines.standardize.dates import standardize_date
from datafactory_pipelines.standardize.email import standardize_email
from datafactory_pipelines.standardize.ids import (
    standardize_qq,
    standardize_short_video_id,
    standardize_wechat,
)
from datafactory_pipelines.standardize.name import standardize_name
from datafactory_pipelines.standardize.phone import standardize_phone
from datafactory_pipelines.standardize.title import standardize_title


@pytest.mark.parametrize(
    ("raw", "mobile", "landline", "status"),
    [
        ("13800138000", "13800138000", "", "valid"),
        ("+86 138 0013 8000", "13800138000", "", "repaired"),
        ("0086-13800138000", "13800138000", "", "repaired"),
        ("(+86)13800138000", "13800138000", "", "repaired"),
        ("86-13800138000", "13800138000", "", "repaired"),
        ("138-0013-8000", "13800138000", "", "repaired"),
        ("１３８００１３８０００", "13800138000", "", "repaired"),
        ("13800138000.0", "13800138000", "", "repaired"),
        ("1.3800138E+10", "13800138000", "", "repaired"),
        (" 13800138000 ", "13800138000", "", "repaired"),
        ("0755-81234567", "", "0755-81234567", "valid"),
        ("010-62345678转123", "", "010-62345678-123", "repaired"),
        ("12345", "", "", "invalid"),
        ("2800138000", "", "", "invalid"),
        # nationwide service numbers: a company's line, reachable (never "no phone")
        ("400-820-8820", "", "400-820-8820", "valid"),
        ("4008208820", "", "400-820-8820", "repaired"),
        ("800 810 8888", "", "800-810-8888", "repaired"),
        ("4001234", "", "", "invalid"),
        ("", "", "", "empty"),
    ],
)
def test_phones(raw: str, mobile: str, landline: str, status: str) -> None:
    result = standardize_phone(raw)
    assert (result.mobile, result.landline, result.status) == (mobile, landline, status)


def test_several_numbers_in_one_cell() -> None:
    result = standardize_phone("13800138000，13900139000 / 0755-81234567")
    assert result.mobile == "13800138000"
    assert result.alternates == "13900139000;0755-81234567"


@pytest.mark.parametrize(
    ("raw", "email", "status"),
    [
        ("zw@qq.com", "zw@qq.com", "valid"),
        (" ZW@QQ.COM ", "zw@qq.com", "repaired"),
        ("zw＠qq.com", "zw@qq.com", "repaired"),
        ("mailto:zw@qq.com", "zw@qq.com", "repaired"),
        ("zw@qq.con", "zw@qq.com", "repaired"),
        ("zw@gmial.com", "zw@gmail.com", "repaired"),
        ("zw@163.cm", "zw@163.com", "repaired"),
        ("zw@qq,com", "zw@qq.com", "repaired"),
        ("not an email", "", "invalid"),
        ("a@@b.com", "", "invalid"),
    ],
)
def test_emails(raw: str, email: str, status: str) -> None:
    result = standardize_email(raw)
    assert (result.email, result.status) == (email, status)


def test_role_accounts_are_flagged() -> None:
    assert standardize_email("sales@company.cn").is_role
    assert not standardize_email("zhang.wei@company.cn").is_role


@pytest.mark.parametrize(
    ("raw", "name", "salutation", "partial", "key"),
    [
        ("张伟", "张伟", "", False, "张伟"),
        (" 张 伟 ", "张伟", "", False, "张伟"),
        ("張偉", "张伟", "", False, "张伟"),
        ("张伟(先生)", "张伟", "先生", False, "张伟"),
        ("王芳女士", "王芳", "女士", False, "王芳"),
        ("张总", "张", "总", True, "张"),
        ("李经理", "李", "经理", True, "李"),
        ("John  Smith", "John Smith", "", False, "john smith"),
    ],
)
def test_names(raw: str, name: str, salutation: str, partial: bool, key: str) -> None:
    result = standardize_name(raw)
    assert (result.name, result.salutation, result.partial, result.key) == (name, salutation, partial, key)


def test_homophones_share_a_pinyin_key() -> None:
    assert standardize_name("张伟").pinyin == standardize_name("章伟").pinyin == "zhangwei"


@pytest.mark.parametrize(
    ("raw", "key"),
    [("深圳星海科技有限公司", "星海科技"), ("星海科技有限责任公司", "星海科技"), ("深圳星海科技", "星海科技"),
     ("深圳市星海科技股份有限公司", "星海科技"), ("星海科技（深圳）有限公司", "星海科技")],
)
def test_company_core_key(raw: str, key: str) -> None:
    assert standardize_company(raw).key == key


@pytest.mark.parametrize(
    ("raw", "title"),
    [("销售经理", "销售经理"), ("Sales Manager", "销售经理"), ("销售部经理", "销售经理"), ("销售 经理", "销售经理"),
     ("GM", "总经理"), ("CTO", "技术总监"), ("客服部经理", "客服经理"), ("首席科学家", "首席科学家")],
)
def test_titles(raw: str, title: str) -> None:
    assert standardize_title(raw) == title


def test_ids() -> None:
    assert standardize_wechat("WX_Abc123").value == "wx_abc123"
    assert standardize_wechat("微信：abc_12345").value == "abc_12345"
    assert standardize_wechat("13800138000").value == "13800138000"
    assert standardize_wechat("1abc").status == "invalid"
    assert standardize_qq("123456.0").value == "123456"
    assert standardize_qq("0123456").status == "invalid"
    assert standardize_short_video_id("@dy_12345").value == "dy_12345"


def test_address_and_dates() -> None:
    assert standardize_address("广东省深圳市南山区科技园1号")[1:] == ("广东省", "深圳市", "南山区")
    assert standardize_address("北京市朝阳区建国路8号")[1:] == ("北京市", "北京市", "朝阳区")
    assert standardize_date("2025/3/7") == standardize_date("2025年3月7日") == "2025-03-07"
    assert standardize_date("45723") == "2025-03-07"
    assert standardize_date("soon") == ""


def test_frame_sets_aside_rows_that_reach_nobody() -> None:
    raw = pd.DataFrame({"name": ["张伟", "李娜"], "mobile": ["13800138000", "12345"], "email": ["", "bad"]})
    out = standardize_frame(raw)
    assert out["reachable"].tolist() == [True, False]
    assert out.loc[1, "reject_reason"].startswith("no reachable contact: mobile invalid")
    assert "12345" not in out.loc[1, "reject_reason"]  # reasons never repeat personal data


def test_libphonenumber_prefixes_decide_mobile_validity() -> None:
    assert standardize_phone("17412345678").status == "invalid"  # 174 is not a CN mobile range
    assert standardize_phone("14012345678").status == "invalid"
    assert standardize_phone("19212345678").mobile == "19212345678"


def test_role_and_combined_titles() -> None:
    assert standardize_title("董事长兼总经理") == "董事长"
    assert standardize_title("Sales Manager / 销售经理") == "销售经理"


def test_switchboard_style_landlines_are_landlines() -> None:
    # seven-digit local numbers are common on older lists and company switchboards
    assert standardize_phone("0755-5123456").landline == "0755-5123456"
    assert standardize_phone("010-5123456").landline == "010-5123456"
    assert standardize_phone("0755-0123456").status == "invalid"  # a local number never starts with 0


def test_pinyin_table_read_from_the_json_equals_lazy_pinyin() -> None:
    """The character readings read from pypinyin's JSON (without importing pypinyin) are what
    `lazy_pinyin` gives, for every character of the blocks pinyin_key converts."""
    from pypinyin import lazy_pinyin

    from datafactory_pipelines.standardize.chinese import simplified_table, toneless_pinyin

    different = [chr(c) for c in range(0x3400, 0xA000) if toneless_pinyin(chr(c)) != lazy_pinyin(chr(c))[0]]
    assert different == []
    assert toneless_pinyin("绿") == "lv" and toneless_pinyin("張") == "zhang" and toneless_pinyin("a") == "a"
    assert simplified_table()[ord("張")] == "张"
