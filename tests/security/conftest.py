"""The security tests share the Qt fixtures of the widget tests (tests/window_fixtures.py)."""

from tests.window_fixtures import no_window_left, qapp_cls  # noqa: F401 - fixtures
