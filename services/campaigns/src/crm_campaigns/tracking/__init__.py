"""Open and click tracking, and unsubscribe: signed public links and what they record."""
