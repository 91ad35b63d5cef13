"""CRM reports service."""
