"""Errors a user can act on: each carries a one-line message."""


class DragomanError(Exception):
    """Base class for errors shown to users as one line."""


class UnsupportedLanguageError(DragomanError):
    """A language code that no stage knows."""


class UnsupportedPairError(DragomanError):
    """A translation direction with no route."""


class AudioInputError(DragomanError):
    """An input file that is missing, empty or not decodable audio."""


class ModelUnavailableError(DragomanError):
    """A model that is configured but cannot be found or loaded."""


class StageError(DragomanError):
    """A stage that failed at run time; the call goes on with a failure event."""

    def __init__(self, stage: str, reason: str, recoverable: bool = True) -> None:
        super().__init__(f"{stage} failed: {reason}")
        self.stage = stage
        self.reason = reason
        self.recoverable = recoverable


class ConfigurationError(DragomanError):
    """A setting that cannot work; start-up stops with this message."""
