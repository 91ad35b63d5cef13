"""CRM contacts service."""
