"""The engine's failures, each with a message meant for the user."""

from __future__ import annotations


class EngineError(RuntimeError):
    """Loading or generation failed; the message is meant for the user."""


class ContextFullError(EngineError):
    """The prompt alone does not fit in the context window."""


class LoadCancelled(EngineError):
    """The user cancelled a load in progress."""


class InvalidInput(EngineError):
    """The request itself cannot be used (an image the model cannot read, a template's refusal):
    answered as the request's fault, not the engine's."""


class TemplateError(InvalidInput):
    """The chat template refused the messages (a template's own `raise_exception`, or its error on
    what it was given): answered as the request's fault, not the engine's."""
