"""Sales cycle: days from creation to win, distribution by pipeline, owner and source."""
