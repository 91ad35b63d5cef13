"""Stalled deals: open deals longer in their stage than the stage's usual (p75) stay."""
