"""The one exception type users see.

Every error caused by user input (a config key, a dataset file, a checkpoint) is raised as
:class:`DistSpkError` with a message that names the culprit. The CLI prints the message and exits
with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class DistSpkError(Exception):
    """An error in user input, reported as one clear message."""


class ConfigError(DistSpkError):
    """A config key, type or value is wrong."""


class DataError(DistSpkError):
    """A dataset is missing, malformed or inconsistent."""
