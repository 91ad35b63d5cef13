"""Customer value: RFM scores, revenue to date and predicted lifetime value; published on change."""
