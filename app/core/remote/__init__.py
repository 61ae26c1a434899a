"""Remote OpenAI-compatible engines: the client, saved endpoints, local-engine detection."""
