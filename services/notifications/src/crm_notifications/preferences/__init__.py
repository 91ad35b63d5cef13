"""Per-contact notification preferences: category opt-outs and SMS quiet hours."""
