"""Proposals on a deal: priced lines, a Decimal total, draft -> sent -> accepted / rejected."""
