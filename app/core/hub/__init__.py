"""The Hugging Face Hub: search, repository files and their fit, downloads."""
