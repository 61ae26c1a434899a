"""Everything that is not Qt: engine, GGUF inspection, sampling, conversation values.

Nothing under app.core may import PySide6, shiboken6 or qasync (tests/core/test_no_qt.py checks).
"""
