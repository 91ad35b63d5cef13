"""Campaigns: definition, lifecycle, the send ledger, the sender, A/B tests and statistics."""
