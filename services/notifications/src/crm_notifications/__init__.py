"""CRM notifications service."""
