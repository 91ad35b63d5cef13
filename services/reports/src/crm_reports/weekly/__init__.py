"""The weekly report mailed to each head of sales: last week's kpis and managers for their teams."""
