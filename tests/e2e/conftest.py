"""Whole-window and subprocess scenarios share the Qt fixtures (tests/window_fixtures.py)."""

from tests.window_fixtures import (  # noqa: F401 - fixtures
    empty_window,
    make_window,
    models_dir,
    no_window_left,
    qapp_cls,
    window,
)
