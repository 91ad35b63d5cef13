"""Deals, their moves through a pipeline and their stage history."""
