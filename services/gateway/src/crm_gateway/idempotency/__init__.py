"""Idempotency keys: the first answer to a POST or PATCH, replayed for a retry with the same key."""
