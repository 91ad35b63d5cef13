"""Authentication: passwords, sessions, rotating refresh tokens, login throttling."""
