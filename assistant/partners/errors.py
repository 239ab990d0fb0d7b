"""The partner store's one exception."""

from __future__ import annotations

from assistant.errors import InvalidInput


class PartnerError(InvalidInput):
    """A bad partner name, origin or quota, or an unknown partner; the message says why."""
