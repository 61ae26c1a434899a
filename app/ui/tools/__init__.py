"""MCP tools in the window: the servers' settings, the tools a conversation may use, and who runs them."""
