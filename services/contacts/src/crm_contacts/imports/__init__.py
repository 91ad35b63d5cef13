"""CSV import of contacts as restart-safe background jobs."""
