"""Marketing events: invited, registered, attended, participation, and the deals that followed."""
