"""User-facing errors: one clear line, what is wrong and what to do."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment (not a bug in edgebench).

    The CLI prints ``edgebench: error: <message>`` on one line and exits with
    ``exit_code``; no traceback.
    """

    exit_code = 2

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ModelError(UserError):
    """The model file is missing, corrupt, unsupported or fails to run."""

    exit_code = 3


class SourceError(UserError):
    """The frame source is missing, cannot be opened, ends too early or stalls."""

    exit_code = 4


class PublishError(UserError):
    """The MQTT broker cannot be reached or refuses us."""

    exit_code = 5


class StrictError(UserError):
    """``--strict``: the result was written (and published) but is INVALID or missed its bound."""

    exit_code = 8


class OutputError(UserError):
    """The run finished (and was published) but its result could not be written where asked;
    it is kept elsewhere and the line says where."""

    exit_code = 9
