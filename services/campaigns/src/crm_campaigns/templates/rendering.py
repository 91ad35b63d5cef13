"""Sandboxed Jinja2: validation at save time, compile once, render per recipient.

The environment is Jinja2's immutable sandbox (no attribute starting with `_`,
no mutation of lists and dicts, bounded `range`), with only the variables a
message may use. A template is checked at save time by walking its syntax tree:
every name and every attribute must be one we provide, so a typo
(`{{ contact.frist_name }}`) and an escape attempt
(`{{ ''.__class__.__mro__ }}`, `{{ cycler.__init__.__globals__ }}`) are both a
422 naming what is wrong, before anything runs. The sandbox stays as the
second wall at render time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crm_kernel.problems import Unprocessable

CONTACT_FIELDS = frozenset({"first_name", "last_name", "email", "phone", "position", "custom"})
OWNER_FIELDS = frozenset({"name", "email"})
CAMPAIGN_FIELDS = frozenset({"name"})
# Top-level names a template may use, with the attributes each offers (None: a plain value).
VARIABLES: dict[str, frozenset[str] | None] = {
    "contact": CONTACT_FIELDS,
    "owner": OWNER_FIELDS,
    "campaign": CAMPAIGN_FIELDS,
    # A marketing event's invitation (crm_campaigns.events fills it in).
    "event": frozenset({"name", "kind", "starts_at", "place", "registration_url"}),
    "unsubscribe_url": None,
    "range": None,
}
MAX_TEMPLATE_CHARS = 200_000
# Filters that reach attributes by a computed name (the sandbox would stop them; we refuse early).
BLOCKED_ATTRIBUTES = frozenset({"format", "format_map", "mro"})
BLOCKED_FILTERS = frozenset({"attr", "map", "selectattr", "rejectattr", "groupby", "sort"})


class TemplateSource(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def body_html(self) -> str | None: ...
    @property
    def body_text(self) -> str: ...


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `*` and `**` bounded (no gigabyte strings from a template)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if abs(right) > 64 if isinstance(right, int | float) else True:
                raise SecurityError("exponent too large")
            return left**right
        sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
        counts = [v for v in (left, right) if isinstance(v, int)]
        if sizes and counts and sizes[0] * max(counts[0], 0) > 100_000:
            raise SecurityError("result too large")
        return left * right


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    # Chainable: `contact.custom.city` of a contact without custom fields renders empty.
    env = _Sandbox(autoescape=autoescape, undefined=ChainableUndefined)
    # Only what a message needs: no cycler, joiner, namespace or lipsum to climb from.
    env.globals = {"range": env.globals["range"]}
    return env


_HTML = _environment(autoescape=True)
_PLAIN = _environment(autoescape=False)


def _problem(field: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"{field}: {message}", errors=[{"field": field, "location": "body", "message": message}]
    )


def _check_names(tree: nodes.Template, field: str) -> None:
    """Every variable and attribute is one we provide; loops' own names are allowed."""
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for flt in tree.find_all(nodes.Filter):
        if flt.name in BLOCKED_FILTERS:
            raise _problem(field, f"the {flt.name!r} filter is not allowed")
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name):
            if node.ctx == "load" and node.name not in VARIABLES and node.name not in local:
                raise _problem(field, f"unknown variable {node.name!r}")
            continue
        attr: object
        if isinstance(node, nodes.Getitem):
            attr = node.arg.value if isinstance(node.arg, nodes.Const) else None
            if not isinstance(attr, str) or attr.startswith("_"):
                raise _problem(field, "only constant keys may be looked up, e.g. custom['city']")
        else:
            attr = getattr(node, "attr", "")
        if not isinstance(attr, str) or attr.startswith("_") or attr in BLOCKED_ATTRIBUTES:
            raise _problem(field, f"attribute {attr!r} is not allowed")
        owner = getattr(node, "node", None)
        if isinstance(owner, nodes.Name) and owner.ctx == "load":
            allowed = VARIABLES.get(owner.name)
            if owner.name in VARIABLES and (allowed is None or attr not in allowed):
                raise _problem(field, f"unknown variable {owner.name}.{attr}")


def check_source(field: str, source: str | None) -> None:
    """Parse one part of a template and check its names; 422 naming the field and the problem."""
    if not source:
        return
    if len(source) > MAX_TEMPLATE_CHARS:
        raise _problem(field, f"at most {MAX_TEMPLATE_CHARS} characters")
    try:
        tree = _PLAIN.parse(source)
    except TemplateSyntaxError as exc:
        raise _problem(field, f"syntax error on line {exc.lineno}: {exc.message}") from exc
    except RecursionError as exc:
        raise _problem(field, "nested too deeply") from exc
    _check_names(tree, field)


def uses_variable(source: str | None, name: str) -> bool:
    """Whether a template part reads the top-level variable `name` (unparsable: no)."""
    if not source:
        return False
    try:
        return name in meta.find_undeclared_variables(_PLAIN.parse(source))
    except (TemplateSyntaxError, RecursionError):
        return False  # validation reports it


def validate_template(source: TemplateSource) -> None:
    """Check every part, then render once with a sample contact (the sandbox's verdict too)."""
    check_source("subject", source.subject)
    check_source("body_html", source.body_html)
    check_source("body_text", source.body_text)
    compiled = compile_template(source)
    try:
        compiled.render(SAMPLE_CONTEXT)
    except (
        SecurityError,
        TemplateError,
        ArithmeticError,
        ValueError,
        TypeError,
        LookupError,
        RecursionError,
    ) as exc:
        raise _problem("body", f"cannot be rendered: {exc}") from exc


@dataclass(frozen=True)
class RenderedMessage:
    subject: str | None
    html: str | None
    # The plain-text part of an e-mail, or the SMS text.
    text: str


class CompiledTemplate:
    """A template compiled once (per campaign or variant), rendered per recipient."""

    def __init__(self, source: TemplateSource):
        self.channel = source.channel
        try:
            self._subject = _PLAIN.from_string(source.subject) if source.subject else None
            self._html = _HTML.from_string(source.body_html) if source.body_html else None
            self._text = _PLAIN.from_string(source.body_text or "")
        except TemplateSyntaxError as exc:
            raise _problem("body", f"syntax error on line {exc.lineno}: {exc.message}") from exc
        except RecursionError as exc:
            raise _problem("body", "nested too deeply") from exc

    def render(self, context: Mapping[str, Any]) -> RenderedMessage:
        """The message for one recipient; a missing field renders empty (or its default)."""
        subject = self._subject.render(context) if self._subject else None
        return RenderedMessage(
            subject=" ".join(subject.split()) if subject is not None else None,
            html=self._html.render(context) if self._html else None,
            text=self._text.render(context),
        )


def compile_template(template: TemplateSource) -> CompiledTemplate:
    return CompiledTemplate(template)


def contact_context(
    contact: Any, *, owner_name: str | None = None, owner_email: str | None = None
) -> dict[str, Any]:
    """The `contact` and `owner` variables: empty fields are left out so `default()` applies."""
    fields = {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "phone": contact.phone,
        "position": contact.position,
        "custom": {k: v for k, v in (contact.custom or {}).items() if v not in (None, "")},
    }
    owner = {"name": owner_name, "email": owner_email}
    return {
        "contact": {k: v for k, v in fields.items() if v not in (None, "")},
        "owner": {k: v for k, v in owner.items() if v},
    }


SAMPLE_CONTEXT: dict[str, Any] = {
    "contact": {
        "first_name": "Анна",
        "last_name": "Петрова",
        "email": "anna@example.com",
        "phone": "+79990000000",
        "position": "CEO",
        "custom": {},
    },
    "owner": {"name": "Manager", "email": "manager@example.com"},
    "campaign": {"name": "Campaign"},
    "event": {
        "name": "Seminar",
        "kind": "seminar",
        "starts_at": "2026-01-01T10:00:00+00:00",
        "place": "Moscow",
        "registration_url": "https://example.com/e/token",
    },
    "unsubscribe_url": "https://example.com/u/token",
}
