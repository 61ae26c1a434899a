"""The local OpenAI-compatible API server: settings, request schema, guard, wire format, routes, server."""
