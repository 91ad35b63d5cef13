"""Audit: the gateway's security events and the merged audit of every service."""
