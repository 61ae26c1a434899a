"""Chat: messages, the Qt-free chat session, and the conversation store (SQLite)."""
