"""Orders from accepted proposals, with a validated status machine."""
