"""KPIs a head of sales asks for, each with the previous period."""
