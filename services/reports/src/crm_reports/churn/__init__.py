"""Churn risk: customers quiet for longer than their usual interval."""
