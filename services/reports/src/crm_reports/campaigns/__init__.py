"""Campaign response and ROI: per campaign and variant, from message facts and attributed deals."""
