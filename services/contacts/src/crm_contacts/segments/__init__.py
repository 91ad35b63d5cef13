"""Segments: static lists and saved filters of contacts."""
