"""Ways out: SMTP or the local mail sink for e-mail, the local SMS sink."""
