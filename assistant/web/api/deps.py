"""Dependencies shared by the routers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request

from assistant.service import Assistant


def get_assistant(request: Request) -> Assistant:
    assistant: Assistant = request.app.state.assistant
    return assistant


AssistantDep = Annotated[Assistant, Depends(get_assistant)]


def client_address(request: Request) -> str:
    """The visitor's address: the right-most entry of the trusted proxy header when one is
    configured (`ASSISTANT_TRUSTED_PROXY_HEADER`) and present, else the socket peer's."""
    header: str | None = request.app.state.assistant.settings.trusted_proxy_header
    if header:
        values = ",".join(request.headers.getlist(header)).split(",")
        last = values[-1].strip() if values else ""
        if last:
            return _strip_port(last)
    peer = request.client.host if request.client else ""
    return peer or "unknown"


def _strip_port(address: str) -> str:
    """`203.0.113.7:4711` -> `203.0.113.7`, `[2001:db8::1]:4711` -> `2001:db8::1`; else as is."""
    if address.startswith("[") and "]" in address:
        return address[1 : address.index("]")]
    host, sep, port = address.rpartition(":")
    if sep and port.isdigit() and host.count(":") == 0:
        return host
    return address


T = TypeVar("T")
_state_lock = threading.Lock()


def state_once(state: Any, name: str, make: Callable[[], T]) -> T:
    """`state.<name>` (an app's `app.state`), made by `make()` on first use, once: the stores
    and throttles that open files or databases only when a route first needs them."""
    value: T | None = getattr(state, name, None)
    if value is None:
        with _state_lock:
            value = getattr(state, name, None)
            if value is None:
                value = make()
                setattr(state, name, value)
    return value
