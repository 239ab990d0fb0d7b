"""Web origins: how a partner's allowlist entries and a request's `Origin` header are normalised.

An origin is `scheme://host[:port]` in lower case with the default port dropped; only
https is accepted for allowlists, except plain http on a loopback host (for local tests).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from assistant.partners.errors import PartnerError

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _split_origin(value: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of an origin-like string; raises PartnerError."""
    text = value.strip()
    if not text or any(c.isspace() for c in text):
        raise PartnerError(f"origin {value!r}: expected scheme://host[:port], e.g. https://www.example.org")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        raise PartnerError(f"origin {value!r}: expected http(s)://host[:port], e.g. https://www.example.org")
    if "@" in parts.netloc:
        raise PartnerError(f"origin {value!r}: must not contain a user name or password")
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise PartnerError(f"origin {value!r}: must not have a query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise PartnerError(f"origin {value!r}: the port must be a number from 1 to 65535") from None
    if port == 0:
        raise PartnerError(f"origin {value!r}: the port must be a number from 1 to 65535")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise PartnerError(f"origin {value!r}: has no host")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    elif not re.fullmatch(r"[0-9.]+", host):
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise PartnerError(f"origin {value!r}: {host!r} is not a valid host name") from None
        if not all(_HOST_LABEL.match(label) for label in host.split(".")):
            raise PartnerError(f"origin {value!r}: {host!r} is not a valid host name (no wildcards)")
    return scheme, host, port, parts.path


def _join(scheme: str, host: str, port: int | None) -> str:
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def normalize_origin(value: str) -> str:
    """A partner's allowed origin, validated: `https://host[:port]` (http only for localhost).

    Lower-case, default port dropped, no path (a trailing `/` is accepted and dropped).
    """
    scheme, host, port, path = _split_origin(value)
    if path not in ("", "/"):
        raise PartnerError(f"origin {value!r}: must not have a path (an origin is scheme://host[:port])")
    if scheme == "http" and host.strip("[]") not in LOCAL_HOSTS:
        raise PartnerError(
            f"origin {value!r}: http is allowed only for localhost and 127.0.0.1; use https://{host}"
        )
    return _join(scheme, host, port)


def request_origin(value: str | None) -> str | None:
    """The `Origin` header of a request, normalised for comparison; None if absent or opaque."""
    if not value or value.strip().lower() == "null":
        return None
    try:
        scheme, host, port, path = _split_origin(value)
    except PartnerError:
        return None
    return _join(scheme, host, port) if path in ("", "/") else None

