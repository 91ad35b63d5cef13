"""Read metering: who read which contacts, and the bulk-read guard."""
