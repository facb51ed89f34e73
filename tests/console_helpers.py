"""A data folder for console tests (a store with leads and open conflicts, three accounts) and an HTTP client
that signs in and posts forms as a browser would (cookies, the form's CSRF token)."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from datafactory_pipelines.console.users import UserBook
from datafactory_pipelines.pipeline import import_file, relink_and_curate
from datafactory_pipelines.store import open_store
from tests.conftest import write_xlsx

HEADER = ["姓名", "手机", "邮箱", "公司", "职位", "来源", "登记日期"]
PASSWORDS = {"boss": "admin password 1", "li": "operator password 1", "kan": "viewer password 1",
             "guessed": "operator password 2"}  # the rate-limit test's account
ROLES = {"boss": "admin", "li": "operator", "kan": "viewer", "guessed": "operator"}


def console_home(folder: Path) -> Path:
    """A store with two imports: 王芳 with a second, older mobile among her alternates; 钱伟's two leads (one
    by mobile, one by email) merged by the second import; conflicts on two titles (one group); and a row of
    hostile text (a script tag for a name, bidi controls in the company)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(folder / "leads.duckdb")
    import_file(store, write_xlsx(folder / "展会2025.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "深圳星海科技有限公司", "销售经理", "展会2025", "2025-01-01"],
        ["王芳", "18612345678", "wf@qq.com", "深圳星海科技有限公司", "销售经理", "展会2025", "2024-06-01"],
        ["李娜", "13900139000", "ln@163.com", "云帆贸易", "工程师", "展会2025", "2025-01-01"],
        ["赵敏", "13500135000", "zm@126.com", "绿地建材", "采购经理", "展会2025", "2025-01-01"],
        ["<script>window.pwned=1</script>", "13600136000", "x@evil.com", "\u202eevil\u202c Ltd", "x", "展会2025",
         "2025-01-01"],
        ["钱伟", "13200132000", "", "", "", "展会2025", "2025-01-01"],
        ["钱伟", "", "qianwei@163.com", "", "", "展会2025", "2025-01-01"],
    ]), imported_by="boss")
    relink_and_curate(store, actor="boss")
    import_file(store, write_xlsx(folder / "展会2026.xlsx", [
        HEADER, ["王芳", "13700137000", "wf@qq.com", "星海科技", "销售总监", "展会2026", "2026-03-01"],
        ["李娜", "13900139000", "ln@163.com", "云帆贸易", "技术总监", "展会2026", "2026-03-01"],
        ["钱伟", "13200132000", "qianwei@163.com", "钱氏实业", "经理", "展会2026", "2026-03-01"],  # joins both
    ]), imported_by="boss")
    relink_and_curate(store, actor="boss")
    book = UserBook(folder)
    for name, password in PASSWORDS.items():
        book.add(name, ROLES[name], password)
    return folder / "leads.duckdb"


@dataclass
class Page:
    status: int
    body: str
    url: str
    headers: dict[str, str]

    def csrf(self) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.body).group(1)

    def field(self, name: str) -> str:
        return re.search(rf'name="{name}" value="([^"]*)"', self.body).group(1)


class Client:
    """Cookies kept; redirects followed; every answer returned, errors included."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def url(self, path: str) -> str:
        return self.base + urllib.parse.quote(path, safe="/?=&%+:")

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(self.url(path)))

    def post(self, path: str, form: dict[str, str]) -> Page:
        data = urllib.parse.urlencode(form).encode()
        return self._open(urllib.request.Request(self.url(path), data=data))

    def upload(self, path: str, form: dict[str, str], file: Path) -> Page:
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in form.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file.name}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n".encode() + file.read_bytes() + b"\r\n")
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.url(path), data=data,
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return self._open(request)

    def _open(self, request: urllib.request.Request) -> Page:
        try:
            with self.opener.open(request, timeout=120) as resp:
                return Page(resp.status, resp.read().decode(), resp.url, dict(resp.headers))
        except urllib.error.HTTPError as err:
            return Page(err.code, err.read().decode(), err.url, dict(err.headers))

    def sign_in(self, name: str, password: str | None = None) -> Page:
        token = self.get("/console/login").csrf()
        return self.post("/console/login", {"csrf": token, "user": name,
                                            "password": password if password is not None else PASSWORDS[name]})
