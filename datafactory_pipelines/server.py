"""`datafactory serve`: the event ingress (POST /events), the event schema, and tracking links (/t/<code>).

DuckDB allows one writing process per file. The server talks to the store through the store's batched
writer (`store.batched_writer`, store/batched_writer.py): one thread that holds the store only while
requests keep coming, lets go after a short idle spell, and at once when another process (an import, a
Dagster run) waits for the file or holds the store's writer lock. Requests that arrive together are stored
in one transaction; each is answered only after its commit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from datafactory_pipelines.api_keys import ADMIN, ANY_SOURCE, SCOPES, ApiKey, KeyRing
from datafactory_pipelines.events.feed import insert_events, validate_guarded
from datafactory_pipelines.events.json_guard import parse_batch
from datafactory_pipelines.events.types import EventError, ValidEvent, event_schemas
from datafactory_pipelines.links import link_target, record_click
from datafactory_pipelines.notify.dispatcher import Dispatcher
from datafactory_pipelines.store import LeadStore, open_store

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576  # one request: 1 MiB
MAX_BATCH_EVENTS = 1000
SINGLE_TYPES = {"application/cloudevents+json", "application/json"}
BATCH_TYPE = "application/cloudevents-batch+json"
IDLE_SECONDS = 0.5  # the writer closes the store after this long without a request
YIELD_SECONDS = 1.5  # and stays away this long when another process waits (its retry back-off is ≤ 1 s)


class ServerConfigError(ValueError):
    """The server would be unsafe to start as configured."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


OPEN_CALLER = ApiKey("loopback", "", [ANY_SOURCE], list(SCOPES), admin=True)  # no token, no keys: loopback only


@dataclass
class Refusal:
    """An event refused at the door: 400 (malformed) or 403 (its key may not send for its source)."""

    error: EventError
    status: int


def judge_batch(elements: list, caller: ApiKey) -> list[ValidEvent | Refusal]:
    """Each event of a request judged on its own: too deep or not JSON, not a valid event, or a source its
    key may not use; the others go on."""
    checked = validate_guarded([e.value if not e.error else None for e in elements])
    judged: list[ValidEvent | Refusal] = []
    for i, (element, result) in enumerate(zip(elements, checked, strict=True)):
        if element.error:
            judged.append(Refusal(EventError(i, None, "event", element.error), 400))
        elif isinstance(result, EventError):
            result.index = i
            judged.append(Refusal(result, 400))
        elif not caller.may_send(result.source):
            judged.append(Refusal(EventError(i, result.event_id, "source", (
                f"key {caller.name!r} may not send events for source {result.source[:200]!r}")), 403))
        else:
            judged.append(result)
    return judged


def create_app(store_path: str, token: str | None, keys_file: str | os.PathLike[str] | None = None,
               secure_cookies: bool = False, dispatch_home: Path | None = None) -> FastAPI:
    """The app; with `dispatch_home` (the data folder) it also runs the notification dispatcher
    (notify/dispatcher.py): stored events applied and owners told at once, not by a run per batch."""
    store: LeadStore = open_store(store_path)  # creates the tables once
    ring = KeyRing(Path(keys_file) if keys_file else None, token)
    writer = store.batched_writer(f"datafactory serve (pid {os.getpid()}): storing events", IDLE_SECONDS,
                                  YIELD_SECONDS)
    dispatcher = Dispatcher(store, dispatch_home) if dispatch_home is not None else None

    def wake_dispatcher() -> None:  # this server committed: the dispatcher looks at once (not at its next poll)
        if dispatcher:
            dispatcher.wake()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if dispatcher:
            dispatcher.start()
        yield
        writer.close()  # commits what is queued, then lets go of the store
        if dispatcher:
            dispatcher.stop()  # ends after its pass: what it claimed is recorded

    app = FastAPI(title="datafactory events", version="1.0", lifespan=lifespan,
                  description="CloudEvents ingress for lead events, and tracking links.")
    app.state.writer = writer
    app.state.dispatcher = dispatcher
    schemas = event_schemas()

    def caller_of(request: Request) -> ApiKey | None:
        """The key the request presents (the admin token is one), or None."""
        if ring.open:
            return OPEN_CALLER  # only ever on a loopback host (see serve)
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return ring.find(value.strip()) if scheme.lower() == "bearer" else None

    @app.get("/events/schema")
    def event_schema() -> dict[str, Any]:
        """The CloudEvents envelope and, for each event type, the JSON schema of its `data`."""
        return schemas

    @app.get("/health")
    def health() -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": True, "commits": writer.commits, "yields": writer.yields}
        if dispatcher:  # counts only: an error's text may quote a value, and /health asks for no token
            answer["dispatcher"] = {"active": dispatcher.active, **{k: v for k, v in asdict(dispatcher.stats).items()
                                                                     if k != "last_error"}}
        return answer

    @app.post("/events", status_code=202)
    async def post_events(request: Request) -> Response:
        """One CloudEvent or a batch; 202 with a result per event, 400 naming the bad event and field."""
        caller = caller_of(request)
        if caller is None:
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        if "events:write" not in caller.scopes:
            return _problem(403, f"key {caller.name!r} has no events:write scope")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return _problem(413, f"request body above {MAX_BODY_BYTES} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return _problem(413, f"request body above {MAX_BODY_BYTES} bytes")
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type not in SINGLE_TYPES | {BATCH_TYPE}:
            return _problem(415, f"content type {content_type!r}; expected application/cloudevents+json, "
                                 f"{BATCH_TYPE} or application/json")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as err:
            return _problem(400, f"body is not UTF-8 (byte 0x{body[err.start]:02x} at offset {err.start})")
        try:  # the depth of each event is checked before parsing: a too-deep one is refused on its own
            elements, is_array = parse_batch(text)
        except ValueError as err:
            return _problem(400, f"body is not JSON: {err}")
        if content_type == BATCH_TYPE and not is_array:
            return _problem(400, f"{BATCH_TYPE} needs a JSON array of events")
        if len(elements) > MAX_BATCH_EVENTS:
            return _problem(413, f"{len(elements)} events in one request; at most {MAX_BATCH_EVENTS}")
        judged = judge_batch(elements, caller)
        good = [c for c in judged if isinstance(c, ValidEvent)]
        via = "http" if caller.name in (ADMIN, OPEN_CALLER.name) else f"http:key {caller.name}"
        stored = await asyncio.wrap_future(writer.submit(lambda tx: insert_events(tx, good, via=via))) \
            if good else []
        if stored:
            wake_dispatcher()
        results: list[dict[str, Any]] = []
        done = iter(stored)
        for i, c in enumerate(judged):
            if isinstance(c, Refusal):
                results.append({"index": i, "id": c.error.event_id, "status": "rejected", "code": c.status,
                                "field": c.error.field, "error": c.error.describe()})
            else:
                s = next(done)
                results.append({"index": i, "id": c.event_id, "status": s.status, "seq": s.seq})
        rejected = [r for r in results if r["status"] == "rejected"]
        summary = {"accepted": sum(r["status"] == "accepted" for r in results),
                   "duplicates": sum(r["status"] == "duplicate" for r in results),
                   "rejected": len(rejected), "results": results}
        if rejected:
            summary["error"] = "; ".join(r["error"] for r in rejected[:10])
        # 403 when every refusal is a source the key may not use; 400 when any event is malformed
        status = 202 if not rejected else 403 if all(r["code"] == 403 for r in rejected) else 400
        return JSONResponse(summary, status_code=status)

    @app.get("/t/{code}")
    async def follow_link(code: str, request: Request) -> Response:
        """Record a click on a tracking link and redirect to its stored target."""
        agent = request.headers.get("user-agent", "")
        ip = request.client.host if request.client else ""
        target = await asyncio.wrap_future(writer.submit(lambda tx: record_click(tx, code, agent, ip)))
        wake_dispatcher()
        if target is None:
            return _problem(404, "no such link")
        return RedirectResponse(target, status_code=302)

    @app.head("/t/{code}")
    async def check_link(code: str) -> Response:
        """The same answer as a click, without recording one: link checkers and chat previews send HEAD."""
        target = await asyncio.wrap_future(writer.submit(lambda tx: link_target(tx, code)))
        if target is None:
            return Response(status_code=404)
        return RedirectResponse(target, status_code=302)

    from datafactory_pipelines.console import mount_console

    mount_console(app, store_path, secure_cookies=secure_cookies)  # the operators' pages under /console
    return app


def check_bind(host: str, token: str | None, has_keys: bool = False) -> None:
    if not token and not has_keys and not is_loopback(host):
        raise ServerConfigError(f"refusing to listen on {host} without DATAFACTORY_API_TOKEN or API keys "
                                "(set a token, add keys with `datafactory keys add`, or listen on 127.0.0.1)")


def check_console_bind(host: str, ssl_certfile: str | None, ssl_keyfile: str | None, behind_proxy: bool) -> None:
    """The console's sign-in and cookies travel in clear over plain HTTP: beyond loopback only with TLS, or
    behind a reverse proxy that terminates TLS (said explicitly)."""
    if bool(ssl_certfile) != bool(ssl_keyfile):
        raise ServerConfigError("--ssl-certfile and --ssl-keyfile go together")
    if not is_loopback(host) and not ssl_certfile and not behind_proxy:
        raise ServerConfigError(f"refusing to serve the console on {host} over plain HTTP: give --ssl-certfile and "
                                "--ssl-keyfile, or --behind-proxy when a TLS reverse proxy forwards to it "
                                "(see docs/console.md)")


def serve(store_path: str, host: str = "127.0.0.1", port: int = 8787, log_level: str = "warning",
          keys_file: str | os.PathLike[str] | None = None, ssl_certfile: str | None = None,
          ssl_keyfile: str | None = None, behind_proxy: bool = False,
          dispatch_home: Path | None = None) -> None:
    import uvicorn

    # The event loop and the store's writer thread hand every request to each other; with Python's
    # default 5 ms GIL switch interval each hand-over can wait that long (measured: 12 ms -> 4 ms a request).
    sys.setswitchinterval(0.001)
    token = os.environ.get("DATAFACTORY_API_TOKEN") or None
    check_bind(host, token, has_keys=bool(keys_file) and not KeyRing(Path(keys_file), None).open)
    check_console_bind(host, ssl_certfile, ssl_keyfile, behind_proxy)
    secure = bool(ssl_certfile) or behind_proxy
    uvicorn.run(create_app(store_path, token, keys_file, secure_cookies=secure,
                           dispatch_home=dispatch_home), host=host, port=port,
                log_level=log_level, access_log=False, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                proxy_headers=behind_proxy)
