"""Reading the directory's YAML data files: parse, describe validation errors, cache.

Every failure is a `DirectoryError` whose message starts with the file name and says
which row and what is wrong, so that a broken data file can be fixed from the message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from assistant.centers.model import DirectoryError

T = TypeVar("T")

MAX_REPORTED_ERRORS = 10


def read_yaml(path: Path, what: str) -> Any:
    """The parsed content of `path`; `what` says in the error what the file is for."""
    if not path.is_file():
        raise DirectoryError(f"{path} not found: {what}.")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DirectoryError(f"{path.name}: cannot be read ({exc}).") from exc
    except yaml.YAMLError as exc:
        raise DirectoryError(f"{path.name}: not valid YAML ({exc}).") from exc


def error_text(error: ErrorDetails) -> str:
    """An error's message without pydantic's "Value error, " prefix for our own checks."""
    if error["type"] == "value_error":
        ctx = error.get("ctx") or {}
        if "error" in ctx:
            return str(ctx["error"])
    if error["type"] == "missing":
        return "required, but missing"
    if error["type"] == "extra_forbidden":
        return "not a known key (a typo?)"
    return error["msg"]


def row_path(loc: Sequence[int | str], raw: Any, name_keys: Sequence[str] = ("id", "key", "code", "en")) -> str:
    """`loc` as a readable path, e.g. "countries[12] ('<its en name>'), regions[0]".

    A list index into rows that are mappings is followed by the row's name (its first key
    of `name_keys`), looked up in the raw data."""
    parts: list[str] = []
    node: Any = raw
    for step in loc:
        if isinstance(step, int):
            label = f"[{step}]"
            node = node[step] if isinstance(node, list) and 0 <= step < len(node) else None
            if isinstance(node, dict):
                name = next((node[k] for k in name_keys if isinstance(node.get(k), str)), None)
                if name is not None:
                    label += f" ({name!r})"
            if parts:
                parts[-1] += label
            else:
                parts.append(f"row {label}")
        else:
            parts.append(step)
            node = node.get(step) if isinstance(node, dict) else None
    return ", ".join(parts) or "the file"


def describe(file: str, exc: ValidationError, raw: Any, where: Callable[[Sequence[int | str]], str] | None = None) -> str:
    """One line per validation error: "<file>: <where>: <what is wrong>"."""
    errors = exc.errors()
    lines = [
        f"{file}: {where(err['loc']) if where else row_path(err['loc'], raw)}: {error_text(err)}"
        for err in errors[:MAX_REPORTED_ERRORS]
    ]
    if len(errors) > MAX_REPORTED_ERRORS:
        lines.append(f"{file}: … and {len(errors) - MAX_REPORTED_ERRORS} more.")
    return "\n".join(lines)


class FileCache(Generic[T]):
    """`load(path)` once per file, again only when the file's size or mtime changes.

    Errors are not cached: a file fixed on disk loads on the next call. Thread-safe."""

    def __init__(self, load: Callable[[Path], T]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._entries: dict[Path, tuple[tuple[int, int], T]] = {}

    def get(self, path: Path) -> T:
        path = path.resolve()
        key = stat_key(path)
        with self._lock:
            cached = self._entries.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
            value = self._load(path)
            if key != (-1, -1):
                self._entries[path] = (key, value)
            return value


def stat_key(path: Path) -> tuple[int, int]:
    """(mtime in ns, size) of `path`; (-1, -1) when it cannot be read."""
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_mtime_ns, stat.st_size)
