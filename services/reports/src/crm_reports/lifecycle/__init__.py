"""Lifecycle: contacts per lifecycle stage at the end of each time bucket."""
