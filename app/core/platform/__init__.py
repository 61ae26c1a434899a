"""The foundation: where files live, logs, and secrets in the OS keyring."""
