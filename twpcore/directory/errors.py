"""The error the directory service raises for a request it cannot carry out (the HTTP layer answers ``status``)."""

from __future__ import annotations


class DirectoryError(Exception):
    """A directory request cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.field = status, error, detail, field
