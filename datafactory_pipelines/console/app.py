"""The operators' console: server-rendered pages under /console on `datafactory serve`'s FastAPI app.

Pages read the store through its typed methods (store/console_queries.py and the rest of the interface) and
change it through the same library calls as the command line (decisions, restore, pipeline). Every change
names the signed-in person. Personal values reach a viewer's page masked; every value is rendered as text
(Jinja's escaping, and bidirectional controls shown as visible codes), and the Content-Security-Policy
allows no script at all.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from datafactory_pipelines.config import Paths
from datafactory_pipelines.console.charts import daily_bars
from datafactory_pipelines.console.i18n import DEFAULT_LANGUAGE, LANGUAGES, field_label, translator
from datafactory_pipelines.console.lead_edits import (
    CHANNELS_WITH_ALTERNATES,
    EditRequest,
    StaleFormError,
    apply_edit,
    lead_version,
    split_list,
)
from datafactory_pipelines.console.sessions import (
    LOGIN_CSRF_COOKIE,
    MAX_ADDRESS_FAILURES,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    SessionBook,
    SignInLimiter,
    same_token,
)
from datafactory_pipelines.console.users import User, UserBook
from datafactory_pipelines.decisions import DecisionError
from datafactory_pipelines.fields import EDITABLE_FIELDS, FIELDS, MASK_OF
from datafactory_pipelines.masking import mask_value
from datafactory_pipelines.store import is_database_url, open_store
from datafactory_pipelines.store.duckdb.held_open import HeldOpenStore
from datafactory_pipelines.store.writer_lock import StoreBusyError

logger = logging.getLogger(__name__)

PREFIX = "/console"
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
UPLOAD_SUFFIXES = (".xlsx", ".xls", ".csv")
UPLOAD_KEEP_SECONDS = 86400
CHART_DAYS = 30
MATCH_PAIRS_SHOWN = 20  # the possible matches page: the pairs that teach the most, a screenful
# the search index is built again when this many records or history rows came after it (each search
# reads those tails by scanning them), and when anything came after it and it is this old (while the store
# has moved past it, a search resolves its hits in the store again: still right, a little slower)
INDEX_LAG_RECORDS = 50_000
INDEX_LAG_HISTORY = 200_000
INDEX_STALE_SECONDS = 900
INDEX_CHECK_SECONDS = 300
# what a viewer sees masked: phones, ids and emails (names stay: people are found by them)
VIEWER_MASKED = frozenset(f for f, kind in MASK_OF.items() if kind in ("digits", "email"))
# bidirectional and invisible format characters: shown as their code point, never obeyed
_FORMAT_CHARS = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SHOWN_FIELDS = [f.name for f in FIELDS if f.lead and f.kind != "bookkeeping" and not f.of and f.name != "lead_id"]
RECORD_COLUMNS = ["record_id", "import_id", "source_file", "sheet", "source_row", "collected_at", "source",
                  "name_raw", "mobile_raw", "email_raw", "wechat_raw", "company_raw", "title_raw", "mobile_status",
                  "email_status", "imported_at", "retired_by"]


def inert(value: object) -> object:
    """Every value a template prints: bidi/format controls become visible codes (escaping happens after)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _FORMAT_CHARS.sub(lambda m: f"<U+{ord(m.group()):04X}>", value)
    return value


class Console:
    """The console's state in one server process: store, accounts, sessions, templates."""

    def __init__(self, store_path: str | Path, secure_cookies: bool) -> None:
        if is_database_url(store_path):  # PostgreSQL: pooled sessions, readers never wait
            self.store = open_store(store_path)
            self.home = Paths.from_env().home
        else:
            self.store = HeldOpenStore(store_path)  # the database stays open between a page's reads
            self.home = Path(store_path).resolve().parent
        self.users = UserBook(self.home)
        self.sessions = SessionBook()
        self.account_limiter = SignInLimiter()
        self.address_limiter = SignInLimiter(max_failures=MAX_ADDRESS_FAILURES)
        self.secure_cookies = secure_cookies
        self.uploads = self.home / "console_uploads"
        folder = resources.files("datafactory_pipelines.console").joinpath("templates")
        self.templates = Jinja2Templates(directory=str(folder))
        self.templates.env.finalize = inert
        self.css = resources.files("datafactory_pipelines.console").joinpath("console.css").read_text("utf-8")
        threading.Thread(target=self._keep_search_index, name="console-search-index", daemon=True).start()

    def _keep_search_index(self) -> None:
        """Build the search index when there is none, and again when the store has moved far past it."""
        while True:
            try:
                lag = self.store.search_index_lag()
                if (lag is None or lag["records"] > INDEX_LAG_RECORDS or lag["history"] > INDEX_LAG_HISTORY
                        or (any(lag.values()) and self._search_index_age() > INDEX_STALE_SECONDS)):
                    started = time.perf_counter()
                    built = self.store.build_search_index()
                    logger.info("console search index built: %s in %.1fs", built, time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - searching still works without the index (by scanning)
                logger.exception("console search index not built")
            time.sleep(INDEX_CHECK_SECONDS)

    def _search_index_age(self) -> float:
        try:
            return time.time() - self.store.search_index_path.stat().st_mtime
        except FileNotFoundError:
            return float("inf")

    # -- rendering ---------------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        wanted = request.query_params.get("lang") or request.cookies.get("df_lang") or DEFAULT_LANGUAGE
        return wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE

    def page(self, request: Request, template: str, session: Session | None, status: int = 200,
             **context: Any) -> HTMLResponse:
        lang = self.lang(request)
        role = session.user.role if session else "viewer"

        def show(field: str, value: object) -> str:
            text = "" if value is None or (isinstance(value, float) and value != value) else str(value)
            base = field.removesuffix("_raw")
            return mask_value(base, text) if role == "viewer" and base in VIEWER_MASKED else text

        response = self.templates.TemplateResponse(request, template, {
            "t": translator(lang), "lang": lang, "other_lang": "en" if lang == "zh" else "zh",
            "label": lambda field: field_label(lang, field), "session": session,
            "user": session.user if session else None, "csrf": session.csrf if session else "",
            "show": show, "prefix": PREFIX, **context}, status_code=status)
        if request.query_params.get("lang") in LANGUAGES:
            response.set_cookie("df_lang", lang, max_age=365 * 86400, httponly=True, samesite="strict",
                                secure=self.secure_cookies, path=PREFIX)
        for key, value in SECURITY_HEADERS.items():
            response.headers[key] = value
        return response

    def message(self, request: Request, session: Session | None, status: int, key: str, detail: str = "",
                back: str = "") -> HTMLResponse:
        return self.page(request, "message.html", session, status=status, key=key, detail=detail,
                         back=back or f"{PREFIX}/")

    # -- who is asking -----------------------------------------------------------------------
    def session(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    async def form(self, request: Request, session: Session) -> dict[str, Any] | None:
        """The posted form, when its CSRF token is this session's (None otherwise)."""
        form = await request.form()
        if not same_token(str(form.get("csrf") or ""), session.csrf):
            logger.warning("console: form without this session's CSRF token refused (%s %s, user %s)",
                           request.method, request.url.path, session.user.name)
            return None
        return {k: form.get(k) for k in form}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _safe_name(name: str) -> str:
    base = Path(name.replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^\w.\-\u4e00-\u9fff]", "_", stem).strip("._")[:80] or "upload"
    return stem + suffix


def _forget_old_uploads(folder: Path) -> None:
    """Files uploaded for a preview and never imported are kept a day, then removed."""
    if not folder.is_dir():
        return
    for upload in folder.iterdir():
        if upload.is_dir() and time.time() - upload.stat().st_mtime > UPLOAD_KEEP_SECONDS:
            shutil.rmtree(upload, ignore_errors=True)


def _json_list(value: object) -> list:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return []
    return list(value) if value is not None else []


def _provenance(lead: dict) -> dict[str, dict]:
    try:
        return json.loads(lead.get("provenance") or "{}")
    except json.JSONDecodeError:
        return {}


def mount_console(app: FastAPI, store_path: str | Path, secure_cookies: bool = False) -> Console:
    """Add the console's pages under /console to `app`."""
    console = Console(store_path, secure_cookies)
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    store = console.store

    def signed_in(request: Request) -> Session | Response:
        session = console.session(request)
        if session is None:
            return RedirectResponse(f"{PREFIX}/login", status_code=303)
        return session

    def refuse_role(request: Request, session: Session, role: str) -> Response | None:
        if session.user.may(role):
            return None
        logger.warning("console: %s (%s) refused: %s needs %s", session.user.name, session.user.role,
                       request.url.path, role)
        return console.message(request, session, 403, "forbidden", detail=role)

    async def posted(request: Request, role: str) -> tuple[Session, dict[str, Any]] | Response:
        """A form post from a signed-in person, with this session's CSRF token, whose role may do it; else
        the answer to give instead (sign-in, 403)."""
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        form = await console.form(request, session)
        if form is None:
            return console.message(request, session, 403, "csrf_refused")
        return refuse_role(request, session, role) or (session, form)

    @router.get("/console.css")
    def stylesheet() -> Response:
        return Response(console.css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # -- signing in --------------------------------------------------------------------------
    @router.get("/login")
    def login_form(request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = console.page(request, "login.html", None, login_csrf=token, error="")
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=1800, httponly=True, samesite="strict",
                            secure=console.secure_cookies, path=PREFIX)
        return response

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("user") or "")[:64], str(form.get("password") or "")
        token = secrets.token_urlsafe(24)

        def again(status: int, error: str, retry: float = 0) -> Response:
            response = console.page(request, "login.html", None, status=status, login_csrf=token, error=error)
            response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=1800, httponly=True, samesite="strict",
                                secure=console.secure_cookies, path=PREFIX)
            if retry:
                response.headers["Retry-After"] = str(int(retry) + 1)
            return response

        if not same_token(str(form.get("csrf") or ""), request.cookies.get(LOGIN_CSRF_COOKIE)):
            return again(403, "csrf_refused")
        client = request.client.host if request.client else "?"
        wait = max(console.account_limiter.retry_after(name), console.address_limiter.retry_after(client))
        if wait > 0:
            logger.warning("console: sign-in for %r refused for %.0fs (too many failures)", name, wait)
            return again(429, "too_many", wait)
        user = await run_in_threadpool(console.users.check, name, password)
        if user is None:
            console.account_limiter.failed(name)
            console.address_limiter.failed(client)
            logger.info("console: failed sign-in for %r", name)
            return again(401, "bad_sign_in")
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(SESSION_COOKIE, console.sessions.open(user), max_age=SESSION_SECONDS, httponly=True,
                            samesite="strict", secure=console.secure_cookies, path=PREFIX)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
        logger.info("console: %s signed in (%s)", user.name, user.role)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        if await console.form(request, session) is None:
            return console.message(request, session, 403, "csrf_refused")
        console.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    # -- overview ----------------------------------------------------------------------------
    @router.get("/")
    def overview(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        t = translator(console.lang(request))
        since = _now() - timedelta(days=CHART_DAYS)
        counts = store.console_overview()
        today = _now().date()
        lead_chart = daily_bars(store.daily_lead_counts(since), [("created", t("created")), ("folded", t("folded"))],
                                CHART_DAYS, today)
        conflict_chart = daily_bars(store.daily_conflict_counts(since),
                                    [("opened", t("opened")), ("decided", t("decided"))], CHART_DAYS, today)
        share = counts["reachable_leads"] / counts["active_leads"] if counts["active_leads"] else 0.0
        return console.page(request, "overview.html", session, counts=counts, share=share,
                            imports=store.import_rows(limit=5), events=store.recent_events(10),
                            lead_chart=lead_chart, conflict_chart=conflict_chart)

    # -- finding a lead ----------------------------------------------------------------------
    @router.get("/search")
    def search(request: Request, q: str = "") -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        from datafactory_pipelines.console.search import find_leads

        results = find_leads(store, q) if q.strip() else []
        return console.page(request, "search.html", session, q=q, results=results)

    # -- one lead ----------------------------------------------------------------------------
    @router.get("/leads/{lead_id}")
    def lead_page(request: Request, lead_id: str) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        found = store.lead_rows([lead_id])
        if not found:
            return console.message(request, session, 404, "not_found", detail=lead_id)
        lead = found[0]
        merged = store.leads_merged_into(lead_id)
        return console.page(
            request, "lead.html", session, lead=lead, version=lead_version(lead), fields=SHOWN_FIELDS,
            provenance=_provenance(lead), split=split_list, editable=EDITABLE_FIELDS,
            channels=CHANNELS_WITH_ALTERNATES,
            records=store.lead_record_rows(lead_id, RECORD_COLUMNS),
            history=list(reversed(store.lead_history_rows([lead_id, *merged]))),
            outbox=store.lead_outbox_rows(lead_id), flags=store.lead_contact_flags(lead_id),
            conflicts=store.lead_conflict_rows(lead_id), merged=merged, overrides=store.override_rows(lead_id),
            done=request.query_params.get("done", ""))

    @router.post("/leads/{lead_id}/edit")
    async def edit_lead(request: Request, lead_id: str) -> Response:
        posted_form = await posted(request, "operator")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        edit = EditRequest(lead_id=lead_id, version=str(form.get("version") or ""),
                           action=str(form.get("action") or ""), by=session.user.name,
                           note=str(form.get("note") or "")[:500], field=str(form.get("field") or ""),
                           value=str(form.get("value") or "")[:500], status=str(form.get("status") or "invalid"))
        back = f"{PREFIX}/leads/{lead_id}"
        try:
            done = await run_in_threadpool(apply_edit, store, edit)
        except StaleFormError as err:
            return console.message(request, session, 409, "refused", detail=str(err), back=back)
        except (DecisionError, ValueError, StoreBusyError) as err:
            return console.message(request, session, 400, "refused", detail=str(err), back=back)
        logger.info("console: %s on %s by %s", edit.action, lead_id, session.user.name)
        return RedirectResponse(f"{back}?done={done}", status_code=303)

    @router.post("/leads/{lead_id}/restore")
    async def restore_lead(request: Request, lead_id: str) -> Response:
        posted_form = await posted(request, "admin")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        from datafactory_pipelines.restore import restore_lead_as_of

        back = f"{PREFIX}/leads/{lead_id}"
        try:
            moment = datetime.fromisoformat(str(form.get("as_of") or "").strip())
            report = await run_in_threadpool(restore_lead_as_of, store, lead_id, moment, session.user.name)
        except (DecisionError, ValueError, StoreBusyError) as err:
            return console.message(request, session, 400, "refused", detail=str(err), back=back)
        return RedirectResponse(f"{back}?done=restored {report.fields_restored} field(s)", status_code=303)

    # -- conflicts ---------------------------------------------------------------------------
    @router.get("/conflicts")
    def conflicts(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        from datafactory_pipelines.conflicts import conflict_groups

        groups = conflict_groups(store.conflicts()).to_dict("records")
        return console.page(request, "conflicts.html", session, groups=groups,
                            done=request.query_params.get("done", ""))

    @router.get("/conflicts/{group_id}")
    def conflict_group(request: Request, group_id: str) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        rows = store.conflicts_in_group(group_id).to_dict("records")
        if not rows:
            return console.message(request, session, 404, "not_found", detail=group_id,
                                   back=f"{PREFIX}/conflicts")
        return console.page(request, "conflict_group.html", session, group_id=group_id, rows=rows)

    @router.post("/conflicts/{group_id}/decide")
    async def decide_conflicts(request: Request, group_id: str) -> Response:
        posted_form = await posted(request, "operator")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        import pandas as pd

        from datafactory_pipelines.decisions import decide

        take = str(form.get("take") or "")
        note = str(form.get("note") or "")[:500]
        back = f"{PREFIX}/conflicts/{group_id}"
        if take in ("current", "incoming", "both"):
            ids = [int(v) for v in str(form.get("conflict_ids") or "").split(",") if v.strip().isdigit()]
            decisions = pd.DataFrame({"conflict_id": ids, "decision": take})
        else:  # row by row: decision_<conflict id> = current | incoming | both (or left undecided)
            picked = [(int(k.removeprefix("decision_")), str(v)) for k, v in form.items()
                      if k.startswith("decision_") and k.removeprefix("decision_").isdigit()
                      and v in ("current", "incoming", "both")]
            decisions = pd.DataFrame(picked, columns=["conflict_id", "decision"])
        if decisions.empty:
            return console.message(request, session, 400, "refused", detail="no decision", back=back)
        members = set(store.conflicts_in_group(group_id, status="open")["conflict_id"].astype(int))
        outside = set(decisions["conflict_id"]) - members
        if outside:  # a form for this group decides only this group's open conflicts
            return console.message(request, session, 409, "refused", back=back,
                                   detail=f"stale: conflict(s) {', '.join(map(str, sorted(outside)[:10]))} "
                                          "are not open in this group")
        try:
            count = await run_in_threadpool(decide, store, decisions, session.user.name, note)
        except (DecisionError, ValueError, StoreBusyError) as err:
            return console.message(request, session, 409, "refused", detail=str(err), back=back)
        return RedirectResponse(f"{PREFIX}/conflicts?done={count} decided", status_code=303)

    # -- possible matches (match_review.py) ----------------------------------------------------
    @router.get("/matches")
    def matches(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        from datafactory_pipelines.match_review import pattern_groups, review_queue
        from datafactory_pipelines.match_review_workbook import SHOWN, side_by_side

        queue = review_queue(store)
        pairs = side_by_side(store, queue.head(MATCH_PAIRS_SHOWN)).to_dict("records") if len(queue) else []
        return console.page(request, "matches.html", session, groups=pattern_groups(queue).to_dict("records"),
                            pairs=pairs, fields=SHOWN, open_pairs=len(queue),
                            done=request.query_params.get("done", ""))

    async def _decide_matches(request: Request, session: Session, form: dict[str, Any],
                              decide: Callable[[str], Any]) -> Response:
        from datafactory_pipelines.match_review import ReviewError

        note = str(form.get("note") or "")[:500]
        try:
            outcome = await run_in_threadpool(decide, note)
        except (ReviewError, ValueError, StoreBusyError) as err:
            return console.message(request, session, 409, "refused", detail=str(err), back=f"{PREFIX}/matches")
        return RedirectResponse(f"{PREFIX}/matches?done={outcome.merges} merge, {outcome.aparts} apart",
                                status_code=303)

    @router.post("/matches/decide")
    async def decide_pairs(request: Request) -> Response:
        posted_form = await posted(request, "operator")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        import pandas as pd

        from datafactory_pipelines.match_review import decide_matches

        picked = []
        for key, value in form.items():  # decision_<record>_<record> = merge | apart (or left undecided)
            parts = key.split("_")
            if len(parts) == 3 and parts[0] == "decision" and parts[1].isdigit() and parts[2].isdigit() \
                    and value in ("merge", "apart"):
                picked.append((int(parts[1]), int(parts[2]), str(value)))
        if not picked:
            return console.message(request, session, 400, "refused", detail="no decision", back=f"{PREFIX}/matches")
        decisions = pd.DataFrame(picked, columns=["id_l", "id_r", "decision"])
        return await _decide_matches(request, session, form,
                                     lambda note: decide_matches(store, decisions, session.user.name, note))

    @router.post("/matches/pattern")
    async def decide_a_pattern(request: Request) -> Response:
        posted_form = await posted(request, "operator")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        from datafactory_pipelines.match_review import decide_pattern

        pattern, decision = str(form.get("pattern") or ""), str(form.get("decision") or "")
        if not pattern.isdigit() or decision not in ("merge", "apart"):
            return console.message(request, session, 400, "refused", detail="pattern and decision",
                                   back=f"{PREFIX}/matches")
        return await _decide_matches(request, session, form, lambda note: decide_pattern(
            store, int(pattern), decision, session.user.name, note))

    # -- imports -----------------------------------------------------------------------------
    @router.get("/imports")
    def imports(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        return console.page(request, "imports.html", session, imports=store.import_rows(),
                            done=request.query_params.get("done", ""))

    @router.get("/imports/{import_id}")
    def import_page(request: Request, import_id: str) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        try:
            row = store.import_row(import_id)
        except ValueError:
            return console.message(request, session, 404, "not_found", detail=import_id, back=f"{PREFIX}/imports")
        quarantine = store.quarantine(import_id).head(200).to_dict("records")
        return console.page(request, "import.html", session, imp=row, sheets=_json_list(row.get("sheets")),
                            quarantine=quarantine, effects=store.import_lead_effects(import_id),
                            leads=store.import_lead_ids(import_id))

    @router.post("/upload")
    async def upload(request: Request) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        refused = refuse_role(request, session, "operator")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + 65536:
            return console.message(request, session, 413, "refused", detail=f"above {MAX_UPLOAD_BYTES} bytes",
                                   back=f"{PREFIX}/imports")
        form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
        if not same_token(str(form.get("csrf") or ""), session.csrf):
            return console.message(request, session, 403, "csrf_refused")
        if refused:
            return refused
        upload_file = form.get("file")
        if upload_file is None or not hasattr(upload_file, "read"):
            return console.message(request, session, 400, "refused", detail="no file", back=f"{PREFIX}/imports")
        name = _safe_name(upload_file.filename or "upload")
        if not name.lower().endswith(UPLOAD_SUFFIXES):
            return console.message(request, session, 400, "refused", back=f"{PREFIX}/imports",
                                   detail=f"{name}: expected {', '.join(UPLOAD_SUFFIXES)}")
        _forget_old_uploads(console.uploads)
        token = secrets.token_hex(16)
        folder = console.uploads / token
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        with path.open("wb") as out:
            while chunk := await upload_file.read(1 << 20):
                out.write(chunk)
        (folder / "owner").write_text(session.user.name, encoding="utf-8")
        from datafactory_pipelines.console.preview import preview_file

        preview = await run_in_threadpool(preview_file, store, path, console.home)
        if not preview.ok:
            shutil.rmtree(folder, ignore_errors=True)
        return console.page(request, "preview.html", session, preview=preview, token=token)

    @router.post("/upload/{token}/import")
    async def import_upload(request: Request, token: str) -> Response:
        posted_form = await posted(request, "operator")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        folder = console.uploads / token
        if not re.fullmatch(r"[0-9a-f]{32}", token) or not folder.is_dir() or \
                (folder / "owner").read_text(encoding="utf-8") != session.user.name:
            return console.message(request, session, 404, "not_found", back=f"{PREFIX}/imports")
        files = [p for p in folder.iterdir() if p.name != "owner"]
        from datafactory_pipelines.pipeline import import_file, relink_and_curate

        def run() -> Any:
            with store.exclusive(f"console import {files[0].name} by {session.user.name}"):
                outcome = import_file(store, files[0], imported_by=session.user.name)
                if outcome.status == "imported":
                    relink_and_curate(store, actor=session.user.name)
                return outcome

        try:
            outcome = await run_in_threadpool(run)
        except StoreBusyError as err:
            return console.message(request, session, 503, "refused", detail=str(err), back=f"{PREFIX}/imports")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if outcome.status != "imported":
            return console.message(request, session, 409, "refused", detail=outcome.error, back=f"{PREFIX}/imports")
        return RedirectResponse(f"{PREFIX}/imports/{outcome.import_id}", status_code=303)

    @router.get("/imports/{import_id}/undo")
    def undo_preview(request: Request, import_id: str) -> Response:
        session = signed_in(request)
        if isinstance(session, Response):
            return session
        refused = refuse_role(request, session, "admin")
        if refused:
            return refused
        from datafactory_pipelines.console.undo import preview_undo

        try:
            report = preview_undo(store, import_id, session.user.name)
        except (DecisionError, ValueError, StoreBusyError) as err:
            return console.message(request, session, 400, "refused", detail=str(err), back=f"{PREFIX}/imports")
        return console.page(request, "undo.html", session, import_id=import_id, report=report)

    @router.post("/imports/{import_id}/undo")
    async def undo(request: Request, import_id: str) -> Response:
        posted_form = await posted(request, "admin")
        if isinstance(posted_form, Response):
            return posted_form
        session, form = posted_form
        from datafactory_pipelines.restore import undo_import

        try:
            report = await run_in_threadpool(undo_import, store, import_id, session.user.name)
        except (DecisionError, ValueError, StoreBusyError) as err:
            return console.message(request, session, 400, "refused", detail=str(err), back=f"{PREFIX}/imports")
        return RedirectResponse(f"{PREFIX}/imports?done=undone {import_id}: {report.records_retired} record(s)",
                                status_code=303)

    app.include_router(router)
    app.state.console = console
    return console


__all__ = ["Console", "User", "mount_console"]
