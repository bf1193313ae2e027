"""The HTTP API."""

from cerver.api.app import create_app

__all__ = ["create_app"]
