"""CSV export of the contacts a caller may see."""
