"""The model browser: Hub search, repository details, downloads."""
