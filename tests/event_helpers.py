"""A real uvicorn server on 127.0.0.1 in a thread, real HTTP requests, and a store with a few leads."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from datafactory_pipelines.pipeline import import_file, relink_and_curate
from tests.backends import home_env, store_in
from tests.conftest import write_xlsx

LEAD_ROWS = [
    ["姓名", "手机", "邮箱", "公司", "职位", "来源"],
    ["张伟", "13800138000", "zhangwei@example.com", "深圳星海科技有限公司", "销售经理", "展会2026"],
    ["李娜", "13900139000", "lina@example.com", "蓝天贸易有限公司", "采购", "官网"],
    ["王芳", "13700137000", "wangfang@example.com", "绿地建材有限公司", "总经理", "广告"],
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Answer:
    status: int
    body: dict | list | str
    headers: dict[str, str]


def request(method: str, url: str, body: object = None, token: str | None = None,
            content_type: str = "application/cloudevents+json", raw: bytes | None = None,
            headers: dict[str, str] | None = None) -> Answer:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as resp:
            status, payload, hdrs = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        status, payload, hdrs = err.code, err.read(), dict(err.headers)
    try:
        parsed: dict | list | str = json.loads(payload) if payload else ""
    except json.JSONDecodeError:
        parsed = payload.decode("utf-8", "replace")
    return Answer(status, parsed, {k.lower(): v for k, v in hdrs.items()})


@contextmanager
def running_server(store_path: Path, token: str | None, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """`datafactory serve` in its own process (the store's one-writer rule is per process), on a free
    loopback port; yields the base URL."""
    port = free_port()
    env = {**os.environ, **home_env(store_path.parent), **(extra_env or {})}
    env.pop("DATAFACTORY_API_TOKEN", None)
    if token:
        env["DATAFACTORY_API_TOKEN"] = token
    process = subprocess.Popen([sys.executable, "-m", "datafactory_pipelines.cli", "serve", "--port", str(port)],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the event server ended: {process.stdout.read().decode(errors='replace')}")
        try:
            if request("GET", f"{base}/health").status == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the event server did not start")
        time.sleep(0.1)
    try:
        yield base
    finally:
        stop_process(process, signal.SIGINT, timeout=20)


def stop_process(process: subprocess.Popen, sig: int, timeout: float) -> None:
    """Ask a server process to stop (`sig`); kill it if it has not ended within `timeout` seconds."""
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def store_with_leads(folder: Path):
    """A real store: one .xlsx imported and curated (three leads)."""
    store = store_in(folder)
    import_file(store, write_xlsx(folder / "leads.xlsx", LEAD_ROWS))
    relink_and_curate(store)
    return store


def lead_by_mobile(store, mobile: str) -> dict:
    leads = store.leads()
    return leads[leads["mobile"] == mobile].iloc[0].to_dict()


def event(event_id: str, type_: str, data: dict, source: str = "https://app.example.com", **extra) -> dict:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": type_, "data": data, **extra}


APP_SOURCE = "https://app.example.com"  # the source `event()` sends from by default


def trust_the_app(monkeypatch) -> None:  # noqa: ANN001 - pytest's MonkeyPatch
    """Configure the app as a trusted source, as an operator does (the shipped rules trust none): the rules
    and a `datafactory serve` started after this both read DATAFACTORY_TRUSTED_SOURCES."""
    monkeypatch.setenv("DATAFACTORY_TRUSTED_SOURCES", APP_SOURCE)
