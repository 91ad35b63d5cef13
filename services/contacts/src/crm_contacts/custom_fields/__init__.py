"""Typed custom fields defined by admins, and the validation of their values."""
