"""Value types every layer shares: sampling parameters, reply statistics, text and units (no I/O)."""
