"""The product catalogue: what proposals are made of."""
