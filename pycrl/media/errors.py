"""Typed errors for media input: every failure names the file and says why.

Callers scoring many files catch ``MediaError`` and record the message; the
subclasses let them tell a bad upload (corrupt, unsupported) from a policy
refusal (a limit) without parsing text.
"""

from __future__ import annotations

import os

from pycrl.errors import PycrlError

__all__ = [
    "MediaError",
    "MediaNotFoundError",
    "UnsupportedMediaError",
    "NoVideoStreamError",
    "CorruptMediaError",
    "MediaLimitError",
    "MediaTimeoutError",
]


def describe_source(source) -> str:
    """A short human name for a path, a bytes object or an array."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes in memory>"
    shape = getattr(source, "shape", None)
    if shape is not None:
        return f"<array {tuple(shape)} {getattr(source, 'dtype', '')}>"
    return f"<{type(source).__name__}>"


class MediaError(PycrlError):
    """Base class: the item could not be turned into RGB frames."""

    def __init__(self, source, reason: str):
        self.source = source
        self.name = describe_source(source)
        self.reason = reason
        super().__init__(f"{self.name}: {reason}")


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The path does not exist or is not a regular file (also a FileNotFoundError)."""


class UnsupportedMediaError(MediaError):
    """Not a format pycrl can read (unknown bytes, an image given as video, ...)."""


class NoVideoStreamError(UnsupportedMediaError):
    """A readable container with no video stream (e.g. audio only)."""


class CorruptMediaError(MediaError):
    """A recognised format whose data is broken: empty, truncated, undecodable."""


class MediaLimitError(MediaError):
    """The item exceeds a bound in ``pycrl.limits.Limits``."""


class MediaTimeoutError(MediaLimitError):
    """Decoding the item took longer than ``Limits.timeout_s``."""
