"""Pipeline automation: rules on stages, run when a deal enters one, and the stalled-deal check."""
