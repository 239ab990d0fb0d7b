"""Logins for the browser pages (`/ui`, `/sources/…`) and signed, expiring passage links.

Policy: once API keys are configured (`ASSISTANT_API_KEYS`) the Gradio UI under `/ui`
(its `/ui/gradio_api/…` calls and websockets included) and the document pages under
`/sources/…` need a login, unless `ASSISTANT_PUBLIC_UI=true`. Without keys (local use)
they stay open, as before.

- `GET /login` is a small form; `POST /login` takes it (form-encoded) or JSON
  (`{"api_key": …}` or `{"user": …, "password": …}`, optional `next`). A login is one of
  the API keys, or a user of `ASSISTANT_UI_USERS` (`name:scrypt$<salt hex>$<hash hex>`
  entries, comma-separated; `python -m assistant.web.api.session NAME` makes one). A
  success sets the session cookie: HMAC-signed, HttpOnly, SameSite=Lax, Secure on https,
  expiring after `ASSISTANT_SESSION_HOURS`. It names the key by a fingerprint (or the user
  and a fingerprint of their hash), so removing the key or changing the password ends the
  sessions made with it. Failed logins are counted per client address
  (`FailureThrottle`: `ASSISTANT_LOGIN_FAILURES` in `ASSISTANT_WIDGET_AUTH_WINDOW`
  seconds, then 429 with Retry-After, without checking).
- `GET|POST /logout` clears the cookie.
- Not logged in: a browser page load (GET/HEAD accepting HTML, outside
  `/ui/gradio_api`) is redirected (303, relative) to `/login?next=<the page>`; anything
  else gets 401 JSON. `Authorization: Bearer <API key>` is accepted too.
- Passage links: `passage_url()` builds `/sources/{doc}?start=&end=`; when a login is
  required it adds `&exp=<unix>&sig=<HMAC over doc, start, end, exp>`, valid for
  `ASSISTANT_PASSAGE_LINK_HOURS`. Such a link opens without a login and shows only the
  cited passage with some context (the page marks `scope[PASSAGE_ONLY]`); a changed range,
  document or expiry, or an expired link, is 403 with what to do.

The signing secret is `ASSISTANT_SESSION_SECRET`, or a random one kept in
`ASSISTANT_STATE_DIR/session_secret` (mode 0600, created on first use, like the partner
key pepper). `next` is only ever a local path: anything else becomes `/ui/`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import html
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from assistant.partners.store import read_pepper_file
from assistant.partners.throttle import FailureThrottle, client_subject
from assistant.settings import Settings
from assistant.web.api.auth import key_matches
from assistant.web.api.deps import client_address, state_once
from assistant.web.languages import LANGUAGE_COOKIE, chosen_language
from assistant.web.ui.strings import pair, t

log = logging.getLogger(__name__)

COOKIE = "tt_session"
LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
DEFAULT_NEXT = "/ui/"
SOURCES_PREFIX = "/sources"
UI_PREFIX = "/ui"
UI_API_PREFIX = "/ui/gradio_api"
SECRET_FILE = "session_secret"
PASSAGE_ONLY = "assistant.passage_only"  # scope key: (doc_id, start, end) a signed link grants
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32

NOT_LOGGED_IN = "Log in first: POST /login with an API key or a UI user (a browser gets the form at GET /login)."
LINK_INVALID = (
    "This passage link is not valid: its document, range or expiry was changed. Open the link "
    "exactly as the assistant gave it, or log in to read the document."
)
LINK_EXPIRED = (
    "This passage link expired at {when} UTC. Ask the assistant again for a fresh link, or log "
    "in to read the document."
)
BAD_LOGIN = "Wrong API key, user name or password."

router = APIRouter(tags=["login"])


# --------------------------------------------------------------------------- policy


def login_required(settings: Settings) -> bool:
    """Whether /ui and /sources need a login: API keys configured and the UI not public."""
    return bool(settings.api_key_list) and not settings.public_ui


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def guarded(path: str) -> bool:
    return _under(path, UI_PREFIX) or _under(path, SOURCES_PREFIX)


def safe_next(value: str | None) -> str:
    """`value` when it is a local path (`/…`, not `//host` or `/\\host`), else `/ui/`."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    if any(ord(ch) < 0x20 or ch == "\x7f" or ch == "\\" for ch in value):
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return value


# --------------------------------------------------------------------------- users


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$<salt hex>$<hash hex>` for `password` (the form ASSISTANT_UI_USERS takes)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _password_matches(password: str, stored: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    given = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=len(digest))
    return hmac.compare_digest(given, digest)


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def ui_users(settings: Settings) -> dict[str, str]:
    """name -> stored hash, from ASSISTANT_UI_USERS (malformed entries are logged and skipped)."""
    users: dict[str, str] = {}
    for n, entry in enumerate(e.strip() for e in settings.ui_users.split(",")):
        if not entry:
            continue
        name, sep, stored = entry.partition(":")
        if not sep or not name.strip() or not stored.startswith("scrypt$"):
            log.warning("ASSISTANT_UI_USERS entry %d is not name:scrypt$<salt>$<hash>; skipped", n + 1)
            continue
        users[name.strip()] = stored.strip()
    return users


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --------------------------------------------------------------------------- signing


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signatures for session cookies and passage links, with one secret."""

    def __init__(self, secret: bytes, clock: Any = time.time) -> None:
        self._secret = secret
        self.clock = clock

    def _mac(self, *parts: str) -> str:
        message = "\x1f".join(parts).encode("utf-8", "surrogatepass")
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    # sessions: "<exp>.<subject b64>.<mac>"
    def session(self, subject: str, hours: float) -> tuple[str, int]:
        exp = int(self.clock() + hours * 3600)
        token = f"{exp}.{_b64(subject.encode())}.{self._mac('session', str(exp), subject)}"
        return token, exp

    def session_subject(self, token: str | None) -> str | None:
        """The subject of a valid, unexpired session token; None otherwise."""
        if not token or token.count(".") != 2:
            return None
        exp_text, subject_b64, mac = token.split(".")
        try:
            exp = int(exp_text)
            subject = _unb64(subject_b64).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(mac, self._mac("session", exp_text, subject)):
            return None
        return subject if exp > self.clock() else None

    # passage links
    def passage_sig(self, doc_id: str, start: int, end: int, exp: int) -> str:
        return self._mac("passage", doc_id, str(start), str(end), str(exp))

    def passage_problem(self, doc_id: str, params: dict[str, str]) -> str | None:
        """None when `params` (start, end, exp, sig) are a valid, unexpired link to `doc_id`."""
        try:
            start, end, exp = int(params["start"]), int(params["end"]), int(params["exp"])
            sig = params["sig"]
        except (KeyError, ValueError):
            return LINK_INVALID
        if not hmac.compare_digest(sig.encode(), self.passage_sig(doc_id, start, end, exp).encode()):
            return LINK_INVALID
        if exp <= self.clock():
            return LINK_EXPIRED.format(when=time.strftime("%Y-%m-%d %H:%M", time.gmtime(exp)))
        return None


_signer_lock = threading.Lock()


def get_signer(app: FastAPI) -> Signer:
    """The app's signer (`app.state.signer`), its secret read or created on first use."""
    signer: Signer | None = getattr(app.state, "signer", None)
    if signer is None:
        with _signer_lock:
            signer = getattr(app.state, "signer", None)
            if signer is None:
                settings: Settings = app.state.assistant.settings
                if settings.session_secret is not None:
                    secret = settings.session_secret.get_secret_value().encode()
                    if len(secret) < 32:
                        log.warning("ASSISTANT_SESSION_SECRET is shorter than 32 characters; use `openssl rand -hex 32`")
                else:
                    secret = read_pepper_file(settings.state_dir / SECRET_FILE, create=True) or b""
                signer = Signer(secret)
                app.state.signer = signer
    return signer


def passage_url(app: FastAPI, doc_id: str, start: int, end: int) -> str:
    """The page of a cited passage: signed and expiring when a login is required."""
    url = f"{SOURCES_PREFIX}/{quote(doc_id, safe='')}?start={int(start)}&end={int(end)}"
    settings: Settings = app.state.assistant.settings
    if login_required(settings):
        signer = get_signer(app)
        exp = int(signer.clock() + settings.passage_link_hours * 3600)
        url += "&" + urlencode({"exp": exp, "sig": signer.passage_sig(doc_id, int(start), int(end), exp)})
    return url + "#quote"


def passage_link(app: FastAPI) -> Callable[[dict[str, Any]], str]:
    """A citation (dict with doc_id, start, end) -> `passage_url` (chat answers' `url`)."""

    def link(citation: dict[str, Any]) -> str:
        return passage_url(app, str(citation["doc_id"]), int(citation["start"]), int(citation["end"]))

    return link


# --------------------------------------------------------------------------- checks


def _session_valid(subject: str, settings: Settings) -> bool:
    kind, _, rest = subject.partition(":")
    if kind == "key":
        return any(hmac.compare_digest(rest, _fingerprint(k)) for k in settings.api_key_list)
    if kind == "user":
        name, _, print_ = rest.rpartition(":")
        stored = ui_users(settings).get(name)
        return stored is not None and hmac.compare_digest(print_, _fingerprint(stored))
    return False


def request_logged_in(app: FastAPI, cookie: str | None, authorization: str | None) -> bool:
    settings: Settings = app.state.assistant.settings
    subject = get_signer(app).session_subject(cookie)
    if subject is not None and _session_valid(subject, settings):
        return True
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip() and key_matches(token.strip(), settings.api_key_list):
            return True
    return False


_scrypt_lock = threading.Lock()  # one password check at a time (16 MiB each)


def check_login(settings: Settings, api_key: str, user: str, password: str) -> str | None:
    """The session subject for these credentials, or None. Runs scrypt: call in a thread."""
    if api_key:
        found = [key for key in settings.api_key_list if key_matches(api_key, [key])]  # every key compared
        return f"key:{_fingerprint(found[0])}" if found else None
    if user and password:
        stored = ui_users(settings).get(user)
        with _scrypt_lock:
            # An unknown user costs the same scrypt as a known one.
            ok = _password_matches(password, stored or _dummy_hash())
        if stored is not None and ok:
            return f"user:{user}:{_fingerprint(stored)}"
    return None


# --------------------------------------------------------------------------- middleware


class LoginGate:
    """Pure ASGI: /ui and /sources need a session, a bearer API key or (sources) a signed link."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] not in ("http", "websocket") or not guarded(path) or "app" not in scope:
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        settings: Settings = app.state.assistant.settings
        if not login_required(settings):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if request_logged_in(app, request.cookies.get(COOKIE), request.headers.get("authorization")):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "login required"})
            return
        browser = _wants_html(scope)
        if _under(path, SOURCES_PREFIX) and ("sig" in request.query_params or "exp" in request.query_params):
            doc_id = path[len(SOURCES_PREFIX) + 1 :] if path.startswith(SOURCES_PREFIX + "/") else ""
            problem = get_signer(app).passage_problem(doc_id, dict(request.query_params))
            if problem is None:
                scope[PASSAGE_ONLY] = (doc_id, int(request.query_params["start"]), int(request.query_params["end"]))
                await self.app(scope, receive, send)
                return
            response: Response = (
                _page(403, "Link not valid · 链接无效", f"<p>{html.escape(problem)}</p>", login_link=True)
                if browser
                else JSONResponse({"detail": problem}, status_code=403)
            )
            await response(scope, receive, send)
            return
        if browser and scope.get("method") in ("GET", "HEAD") and not _under(path, UI_API_PREFIX):
            target = path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"{LOGIN_PATH}?{urlencode({'next': safe_next(target)})}", status_code=303)
        else:
            response = JSONResponse({"detail": NOT_LOGGED_IN}, status_code=401)
        await response(scope, receive, send)


def _wants_html(scope: Scope) -> bool:
    for key, value in scope.get("headers") or []:
        if key.lower() == b"accept":
            return b"text/html" in value.lower()
    return False


# --------------------------------------------------------------------------- pages


def _page(status: int, title: str, body: str, *, login_link: bool = False, lang: str | None = None) -> HTMLResponse:
    """A small page; in `lang`, else (a language not known) naming its link in two."""
    log_in = t("log_in", lang) if lang else pair("log_in")
    link = f'<p><a href="{LOGIN_PATH}">{html.escape(log_in)}</a></p>' if login_link else ""
    return HTMLResponse(
        f"""<!doctype html>
<html lang="{html.escape(lang or 'en')}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>
body{{font-family:system-ui,-apple-system,"Noto Sans CJK SC","PingFang SC",sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;color:#1f2328}}
label{{display:block;margin:.8rem 0 .2rem}} input{{width:100%;padding:.45rem;font-size:1rem;box-sizing:border-box}}
button{{margin-top:1rem;padding:.5rem 1.2rem;font-size:1rem}} .error{{color:#b42318}} .or{{color:#57606a;margin-top:1.2rem}}
</style></head><body>
<h1>{html.escape(title)}</h1>
{body}{link}
</body></html>""",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def page_language(request: Request) -> str:
    """The login page's language: `?lang=`, the UI's remembered choice, `Accept-Language`."""
    return chosen_language(
        request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )


def _login_form(next_path: str, error: str = "", status: int = 200, lang: str = "en") -> HTMLResponse:
    message = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""

    def w(key: str) -> str:
        return html.escape(t(key, lang))

    body = f"""{message}<form method="post" action="{LOGIN_PATH}">
<input type="hidden" name="next" value="{html.escape(next_path)}">
<label for="api_key">{w("api_key")}</label>
<input id="api_key" name="api_key" type="password" autocomplete="off">
<p class="or">{w("or_a_user")}</p>
<label for="user">{w("user")}</label>
<input id="user" name="user" autocomplete="username">
<label for="password">{w("password")}</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit">{w("log_in")}</button>
</form>"""
    return _page(status, f"{t('title', lang)} — {t('log_in', lang)}", body, lang=lang)


@dataclass
class _LoginForm:
    api_key: str = ""
    user: str = ""
    password: str = ""
    next: str = DEFAULT_NEXT
    json: bool = False


async def _read_form(request: Request) -> _LoginForm:
    raw = await request.body()
    content_type = request.headers.get("content-type", "").lower()
    values: dict[str, Any] = {}
    if "json" in content_type:
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError, RecursionError):
            data = {}
        values = data if isinstance(data, dict) else {}
        form = _LoginForm(json=True)
    else:
        parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        values = {k: v[0] for k, v in parsed.items() if v}
        form = _LoginForm()

    def text(*names: str) -> str:
        for name in names:
            value = values.get(name)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return ""

    form.api_key = text("api_key", "key")
    form.user = text("user", "username")
    form.password = str(values.get("password") or "") if isinstance(values.get("password"), str) else ""
    form.next = safe_next(text("next") or None)
    return form


def _throttle(request: Request) -> FailureThrottle:
    settings: Settings = request.app.state.assistant.settings
    return state_once(
        request.app.state, "login_throttle", lambda: FailureThrottle(settings.login_failures, settings.widget_auth_window)
    )


def _client(request: Request) -> str:
    return client_subject(client_address(request))


@router.get(LOGIN_PATH, response_class=HTMLResponse, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query's name
    if not login_required(request.app.state.assistant.settings):
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_form(safe_next(next), lang=page_language(request))


@router.post(LOGIN_PATH, include_in_schema=False)
async def login(request: Request) -> Response:
    """Form or JSON: an API key, or a UI user and password; sets the session cookie."""
    settings: Settings = request.app.state.assistant.settings
    form = await _read_form(request)
    throttle = _throttle(request)
    client = _client(request)
    if wait := throttle.retry_after(client):
        detail = f"Too many failed logins; retry in {wait} s."
        headers = {"Retry-After": str(wait)}
        if form.json:
            return JSONResponse({"detail": detail}, status_code=429, headers=headers)
        page = _login_form(form.next, detail, 429, page_language(request))
        page.headers.update(headers)
        return page
    subject = None
    if login_required(settings) and (form.api_key or (form.user and form.password)):
        subject = await run_in_threadpool(check_login, settings, form.api_key, form.user, form.password)
    if subject is None:
        if login_required(settings):
            throttle.fail(client)
            detail = BAD_LOGIN if (form.api_key or form.user) else "Send an API key, or a user and password."
        else:
            detail = "No login is needed here: the UI is open (no API keys configured, or ASSISTANT_PUBLIC_UI=true)."
        if form.json:
            return JSONResponse({"detail": detail}, status_code=401 if login_required(settings) else 400)
        return _login_form(form.next, detail, 401 if login_required(settings) else 400, page_language(request))
    token, exp = get_signer(request.app).session(subject, settings.session_hours)
    response: Response = (
        JSONResponse({"status": "logged in", "expires": exp, "next": form.next})
        if form.json
        else RedirectResponse(form.next, status_code=303)
    )
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.api_route(LOGOUT_PATH, methods=["GET", "POST"], include_in_schema=False)
def logout(request: Request) -> Response:
    wants_json = "json" in request.headers.get("accept", "") and "text/html" not in request.headers.get("accept", "")
    response: Response = (
        JSONResponse({"status": "logged out"}) if wants_json else RedirectResponse(LOGIN_PATH, status_code=303)
    )
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


def install(app: FastAPI) -> None:
    """The login routes, the gate on /ui and /sources (add before the security headers),
    and the session check `auth.require_api_key` asks, so that the UI's own calls to the
    API (translate, feedback) work with the login cookie instead of a key in the page."""
    app.include_router(router)
    app.add_middleware(LoginGate)
    app.state.session_check = lambda request: request_logged_in(app, request.cookies.get(COOKIE), None)


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.web.api.session NAME`: prompt for a password, print the entry."""
    import getpass
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or ":" in args[0] or "," in args[0]:
        print("usage: python -m assistant.web.api.session NAME  (no ':' or ',' in the name)", file=sys.stderr)
        return 2
    password = getpass.getpass(f"password for {args[0]}: ")
    if len(password) < 12 or password != getpass.getpass("again: "):
        print("passwords differ, or shorter than 12 characters", file=sys.stderr)
        return 2
    print(f"{args[0]}:{hash_password(password)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
