"""The recipient directory: a replica of contacts, segments and RFM groups."""
