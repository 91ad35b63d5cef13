"""Per-manager results: deals created, won and lost, revenue, win rate, deal size, cycle."""
