"""The database's errors: each message says what to do."""

from __future__ import annotations

from assistant.errors import Unavailable

UPGRADE = "assistant db upgrade"


class DatabaseError(Unavailable):
    """The database cannot be used (bad URL, unreachable, newer schema); the message says why."""


class SchemaBehind(DatabaseError):
    """The database's schema is older than this version's: `assistant db upgrade` brings it up."""
