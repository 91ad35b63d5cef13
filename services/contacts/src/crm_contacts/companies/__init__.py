"""Companies (organisations) in the client base."""
