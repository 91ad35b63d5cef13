"""System entries on contacts' timelines, derived from other services' events."""
