"""Message templates: sandboxed Jinja2 personalisation for e-mail and SMS."""
