"""Public routes: signed links and forms for people outside the company (no login)."""
