"""The dashboard overview report."""
