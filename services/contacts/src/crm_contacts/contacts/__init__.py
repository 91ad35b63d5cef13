"""People in the client base."""
