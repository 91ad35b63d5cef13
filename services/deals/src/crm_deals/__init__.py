"""CRM deals service."""
