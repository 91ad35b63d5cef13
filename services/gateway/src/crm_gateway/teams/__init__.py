"""Teams and their membership."""
