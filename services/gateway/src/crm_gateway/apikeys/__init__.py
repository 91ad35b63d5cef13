"""API keys for integrations: scoped, hashed, revocable, acting as a user."""
