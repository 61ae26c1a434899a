"""Settings panels."""
