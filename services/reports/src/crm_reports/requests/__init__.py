"""Client requests: opened, resolved, open now and average resolution time per assignee."""
