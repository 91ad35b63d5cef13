"""Lead intake: leads from integrations and web forms, and the rules that give them owners."""
