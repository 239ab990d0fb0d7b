"""Failed partner-key checks, counted per client address and per key id (in memory).

A fixed window per subject: the first failure opens a window of `window` seconds; once
`limit` failures are in it, the subject is throttled until the window ends (`retry_after`
says for how long). Counts live in this process only (several server processes each
allow `limit`); they are bounded to `max_entries` subjects, the oldest dropped first.

`client_subject` turns a client address into what is counted: an IPv4 address as is,
an IPv6 address by its /64 (one host usually holds a whole /64), anything else as is.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable


def client_subject(address: str) -> str:
    """The address a visitor is counted by: IPv4 as is, IPv6 by /64, a non-IP unchanged."""
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureThrottle:
    """Thread-safe failure counts per subject in fixed windows."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 100_000,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be at least 1 and window positive")
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # subject -> (window start, failures)

    def retry_after(self, subject: str) -> int:
        """Seconds until `subject` may be checked again; 0 when it is not throttled."""
        now = self.clock()
        with self._lock:
            entry = self._windows.get(subject)
        if entry is None:
            return 0
        start, failures = entry
        end = start + self.window
        if failures < self.limit or now >= end:
            return 0
        return max(1, math.ceil(end - now))

    def fail(self, subject: str) -> None:
        """Count one failed check for `subject`."""
        now = self.clock()
        with self._lock:
            entry = self._windows.get(subject)
            if entry is None or now >= entry[0] + self.window:
                self._windows.pop(subject, None)  # re-inserted last: the newest
                if len(self._windows) >= self.max_entries:
                    self._evict(now)
                self._windows[subject] = (now, 1)
            else:
                self._windows[subject] = (entry[0], entry[1] + 1)

    def _evict(self, now: float) -> None:
        expired = [s for s, (start, _) in self._windows.items() if now >= start + self.window]
        for s in expired:
            del self._windows[s]
        while len(self._windows) >= self.max_entries:  # still full: drop the oldest windows
            del self._windows[next(iter(self._windows))]

    def __len__(self) -> int:
        with self._lock:
            return len(self._windows)
