"""`datafactory serve`: the event ingress (POST /events), the event schema, and tracking links (/t/<code>).

DuckDB allows one writing process per file. The server talks to the store through the store's batched
writer (`store.batched_writer`, store/duckdb/batched_writer.py): one thread that holds the store only while
requests keep coming, lets go after a short idle spell, and at once when another process (an import, a
Dagster run) waits for the file or holds the store's writer lock. Requests that arrive together are stored
in one transaction; each is answered only after its commit.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from datafactory_pipelines.events.feed import insert_events
from datafactory_pipelines.events.types import EventError, ValidEvent, event_schemas, validate_events
from datafactory_pipelines.links import link_target, record_click
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


def create_app(store_path: str, token: str | None, secure_cookies: bool = False) -> FastAPI:
    store: LeadStore = open_store(store_path)  # creates the tables once
    writer = store.batched_writer(f"datafactory serve (pid {os.getpid()}): storing events", IDLE_SECONDS,
                                  YIELD_SECONDS)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        writer.close()  # commits what is queued, then lets go of the store

    app = FastAPI(title="datafactory events", version="1.0", lifespan=lifespan,
                  description="CloudEvents ingress for lead events, and tracking links.")
    app.state.writer = writer
    schemas = event_schemas()

    def authorized(request: Request) -> bool:
        if not token:
            return True  # only ever on a loopback host (see serve)
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    @app.get("/events/schema")
    def event_schema() -> dict[str, Any]:
        """The CloudEvents envelope and, for each event type, the JSON schema of its `data`."""
        return schemas

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "commits": writer.commits, "yields": writer.yields}

    @app.post("/events", status_code=202)
    async def post_events(request: Request) -> Response:
        """One CloudEvent or a batch; 202 with a result per event, 400 naming the bad event and field."""
        if not authorized(request):
            return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
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
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _problem(400, f"body is not JSON: {err}")
        if content_type == BATCH_TYPE and not isinstance(payload, list):
            return _problem(400, f"{BATCH_TYPE} needs a JSON array of events")
        batch = payload if isinstance(payload, list) else [payload]
        if len(batch) > MAX_BATCH_EVENTS:
            return _problem(413, f"{len(batch)} events in one request; at most {MAX_BATCH_EVENTS}")
        checked = validate_events(batch)
        good = [c for c in checked if isinstance(c, ValidEvent)]
        stored = await asyncio.wrap_future(writer.submit(lambda tx: insert_events(tx, good, via="http"))) \
            if good else []
        results: list[dict[str, Any]] = []
        done = iter(stored)
        for i, c in enumerate(checked):
            if isinstance(c, EventError):
                results.append({"index": i, "id": c.event_id, "status": "rejected", "field": c.field,
                                "error": c.describe()})
            else:
                s = next(done)
                results.append({"index": i, "id": c.event_id, "status": s.status, "seq": s.seq})
        rejected = [r for r in results if r["status"] == "rejected"]
        summary = {"accepted": sum(r["status"] == "accepted" for r in results),
                   "duplicates": sum(r["status"] == "duplicate" for r in results),
                   "rejected": len(rejected), "results": results}
        if rejected:
            summary["error"] = "; ".join(r["error"] for r in rejected[:10])
        return JSONResponse(summary, status_code=400 if rejected else 202)

    @app.get("/t/{code}")
    async def follow_link(code: str, request: Request) -> Response:
        """Record a click on a tracking link and redirect to its stored target."""
        agent = request.headers.get("user-agent", "")
        ip = request.client.host if request.client else ""
        target = await asyncio.wrap_future(writer.submit(lambda tx: record_click(tx, code, agent, ip)))
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


def check_bind(host: str, token: str | None) -> None:
    if not token and not is_loopback(host):
        raise ServerConfigError(f"refusing to listen on {host} without DATAFACTORY_API_TOKEN "
                                "(set a token, or listen on 127.0.0.1)")


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
          ssl_certfile: str | None = None, ssl_keyfile: str | None = None, behind_proxy: bool = False) -> None:
    import uvicorn

    # The event loop and the store's writer thread hand every request to each other; with Python's
    # default 5 ms GIL switch interval each hand-over can wait that long (measured: 12 ms -> 4 ms a request).
    sys.setswitchinterval(0.001)
    token = os.environ.get("DATAFACTORY_API_TOKEN") or None
    check_bind(host, token)
    check_console_bind(host, ssl_certfile, ssl_keyfile, behind_proxy)
    secure = bool(ssl_certfile) or behind_proxy
    uvicorn.run(create_app(store_path, token, secure_cookies=secure), host=host, port=port, log_level=log_level,
                access_log=False, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, proxy_headers=behind_proxy)
