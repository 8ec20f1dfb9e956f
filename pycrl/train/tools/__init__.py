"""One-off tools that make files the repository keeps (run by hand, never at import or run time)."""
