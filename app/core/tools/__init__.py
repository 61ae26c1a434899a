"""Tool calling: how tools reach a model's prompt, how a call is enforced with a grammar, and how a
model's reply is read back as calls (Qt-free; the API and the window's MCP tools share it)."""
