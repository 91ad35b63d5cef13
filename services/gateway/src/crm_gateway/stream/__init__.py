"""The live stream: server-sent events from the bus, filtered per user."""
