"""The local OpenAI-compatible API server: request schema, settings, server."""
