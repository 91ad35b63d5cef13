"""The funnel report: per stage, deals that entered, moved on and were won; time in stage."""
