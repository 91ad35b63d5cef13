"""Shared mechanisms of the CRM services (no business rules)."""
