"""Widget tests share the Qt fixtures (tests/window_fixtures.py)."""

from tests.window_fixtures import make_window, models_dir, qapp_cls, window  # noqa: F401 - fixtures
