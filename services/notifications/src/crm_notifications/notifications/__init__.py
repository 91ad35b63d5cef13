"""Notifications: intake, dispatch with a recorded state machine, and the admin view."""
