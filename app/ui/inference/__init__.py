"""The inference thread in Qt: its events as signals, and the sampling controls."""
