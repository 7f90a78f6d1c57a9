"""Errors Winnow raises on purpose, so callers can catch them by type."""

from __future__ import annotations


class WinnowError(Exception):
    """Base class of every error Winnow raises on purpose."""


class ModelNotFoundError(WinnowError, FileNotFoundError):
    """A model name or path could not be resolved to files on this machine."""


class UnsupportedHardwareError(WinnowError, ValueError):
    """A number format or backend was asked for that this machine's CPU or GPU cannot run."""
