"""Forecast: open pipeline by expected close month, weighted two ways."""
