"""In-app notices for staff: stored per user, listed and marked read by their owner."""
