"""The HTTP API: an app factory and one router per resource."""

from assistant.web.api.factory import create_app

__all__ = ["create_app"]
