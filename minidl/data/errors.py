"""The errors the data loaders raise on purpose; each message names the problem and the fix."""
from __future__ import annotations

from ..errors import MinidlError


class DataNotFoundError(MinidlError, FileNotFoundError):
    """No data set where we looked; the message lists every place and how to get the data."""


class CorruptDataError(MinidlError, ValueError):
    """A data file that cannot be read to the end (a truncated or damaged archive, a bad download)."""


class DataFormatError(MinidlError, ValueError):
    """A readable file whose content is not what was asked for (missing columns, unknown labels)."""


class MissingColumnsError(DataFormatError):
    """A table without the text or label column asked for; ``columns``: the ones it has."""

    def __init__(self, message, columns):
        super().__init__(message)
        self.columns = columns


class SettingError(MinidlError, ValueError):
    """A setting a builder cannot use (0-d vectors, a window of 0), refused before any work."""


class DownloadError(MinidlError, OSError):
    """A download that failed (network, HTTP status, short read); nothing was left on disk."""


class DataWarning(UserWarning):
    """Something in the data was repaired or will be dropped (undecodable bytes, empty texts)."""
