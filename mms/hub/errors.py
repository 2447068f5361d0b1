"""The model hub's errors: one-line messages that say which model or file and what to do (mms.errors.MMSError)."""

from __future__ import annotations

from mms.errors import MMSError


class HubError(MMSError):
    """A model that cannot be found, fetched or used; the message says which and what to do."""


class NotCachedError(HubError):
    """Offline, and the model (or one of its files) is not in the cache."""


class MissingLanguageError(HubError):
    """The model has no such language."""


class RepositoryMissingError(HubError):
    """No such repository on the Hub (or a private one)."""


class UnreachableError(HubError):
    """The host cannot be reached: its name does not resolve, nothing listens, or connecting timed out. Not
    retried: unlike a busy server or a transfer cut off, this does not pass in seconds."""


class HTTPStatusError(HubError):
    """A URL download answered with an HTTP error status."""

    def __init__(self, url: str, status: int, reason: str):
        super().__init__(f"{url}: HTTP {status} {reason}")
        self.status = status
