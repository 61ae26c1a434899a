"""The local API server in the window: its switch, key, log and status-bar summary."""
