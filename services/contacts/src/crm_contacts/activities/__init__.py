"""Activities (calls, meetings, e-mails, notes, SMS) and the timeline of a contact."""
