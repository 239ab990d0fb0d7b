"""Server-to-server access: `Authorization: Bearer <key>` on the `/v1/*` API.

Policy (the issue's words): open when no keys are configured (local use); once keys are
configured (`ASSISTANT_API_KEYS=k1,k2`, or the CLI), every `/v1/*` route outside the
widget's own (`/v1/widget/…`) requires one of them as a bearer token — which is exactly
what an OpenAI client sends for its `api_key`.

`require_api_key` is a FastAPI dependency, attached per router
(`app.include_router(router, dependencies=api_key_dependencies())`) or per app. It reads
the keys from `request.app.state.assistant.settings.api_key_list` on every request, and
it only ever enforces on the protected scope, whatever it is attached to:

- paths under `/v1/` are protected, except the widget's `/v1/widget` and `/v1/widget/…`
  (the widget is a browser client: it cannot hold a server secret);
- everything else (`/healthz`, `/readyz`, `/ui`, `/sources/…`, `/docs`, `/openapi.json`,
  `/widget.js`) is never checked, so attaching the dependency to a router that mixes
  `/v1/documents` with the `/sources/{doc_id}` page is safe.

A missing or wrong key raises `ApiKeyError`, an `HTTPException` (401, with
`WWW-Authenticate: Bearer`): the app's ordinary handler renders it as
`{"detail": "…what to send…"}`; the OpenAI-compatible router renders the same exception
in OpenAI's shape `{"error": {"message", "type": "invalid_request_error", "code":
"invalid_api_key"}}` (see `openai_compat.OpenAIRoute`). One dependency, both shapes.

Keys are compared in constant time (`hmac.compare_digest`, against every configured
key, without stopping at the first match) and are never logged or echoed.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends, HTTPException, Request

PROTECTED_PREFIX = "/v1/"
EXEMPT_PREFIX = "/v1/widget"

MISSING = (
    "This server requires an API key: send the header `Authorization: Bearer <key>` "
    "(with an OpenAI client, pass the key as its api_key)."
)
INVALID = (
    "Invalid API key: send `Authorization: Bearer <key>` with one of the keys this "
    "server was configured with."
)


class ApiKeyError(HTTPException):
    """401: no key, or not a configured one. `code` is OpenAI's error code for it."""

    code = "invalid_api_key"

    def __init__(self, detail: str, *, invalid_token: bool) -> None:
        # RFC 6750: a bare challenge when no credentials came, `invalid_token` when wrong.
        challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
        super().__init__(401, detail, headers={"WWW-Authenticate": challenge})


def is_protected(path: str) -> bool:
    """Whether a path (relative to the app's root) needs a key when keys are configured."""
    if not path.startswith(PROTECTED_PREFIX):
        return False
    return not (path == EXEMPT_PREFIX or path.startswith(EXEMPT_PREFIX + "/"))


def _app_path(request: Request) -> str:
    path: str = request.scope.get("path", "")
    root: str = request.scope.get("root_path", "") or ""
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def key_matches(given: str, keys: list[str]) -> bool:
    """Constant-time membership: every key is compared, as bytes (any characters)."""
    given_bytes = given.encode("utf-8", "surrogatepass")
    found = False
    for key in keys:
        found |= hmac.compare_digest(given_bytes, key.encode("utf-8", "surrogatepass"))
    return found


def require_api_key(request: Request) -> None:
    """Enforce `Authorization: Bearer <key>` on protected paths once keys are configured."""
    keys = request.app.state.assistant.settings.api_key_list
    if not keys or not is_protected(_app_path(request)):
        return
    token = _bearer(request)
    if token is None:
        # A browser logged in to the UI (session.install sets the check): no key in the page.
        session_check = getattr(request.app.state, "session_check", None)
        if session_check is not None and session_check(request):
            return
        raise ApiKeyError(MISSING, invalid_token=False)
    if not key_matches(token, keys):
        raise ApiKeyError(INVALID, invalid_token=True)


def api_key_dependencies() -> list[Any]:
    """The dependency list for `include_router(..., dependencies=…)` or `APIRouter(dependencies=…)`."""
    return [Depends(require_api_key)]
