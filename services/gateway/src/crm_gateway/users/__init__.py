"""Users: staff accounts with a role, teams and a password."""
