"""Composed views for mobile clients: one round trip for a contact's or a deal's overview."""
