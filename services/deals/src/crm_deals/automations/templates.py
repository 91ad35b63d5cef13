"""Automation texts: sandboxed Jinja2 over the deal and its contact, nothing else reachable.

`{{ deal.title }}`, `{{ deal.amount }} {{ deal.currency }}`, `{{ deal.stage }}`,
`{{ contact.first_name }}`... A missing value renders empty; anything unsafe
(attribute tricks, imports, `*` and `**`) fails in the sandbox and the run
is skipped.
"""

from __future__ import annotations

from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _TextTemplates(ImmutableSandboxedEnvironment):
    """No multiplication or power: `{{ "x" * 10**9 }}` would fill the memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        raise SecurityError(f"the operator {operator} is not allowed in templates")


_ENV = _TextTemplates(autoescape=False)


def template_error(text: str) -> str | None:
    """Why the text is not a valid template, or None."""
    try:
        _ENV.parse(text)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def render(text: str, context: dict[str, Any]) -> str:
    """The text with its placeholders filled (TemplateError when the sandbox refuses)."""
    return _ENV.from_string(text).render(context)


__all__ = ["TemplateError", "render", "template_error"]
