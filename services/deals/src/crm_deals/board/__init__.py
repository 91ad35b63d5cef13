"""The kanban board of a pipeline: stages with their deals and totals."""
