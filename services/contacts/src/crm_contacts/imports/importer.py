"""Turning CSV rows into contacts, a batch at a time: validate every row, then write the good ones.

A row either becomes (or updates, or is skipped as) a contact completely, or
is reported with its line, field and reason: validation, company and owner
look-ups and duplicate checks all happen before anything of the batch is
written. The dry run runs the same code without the writes.
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Table, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_contacts import access
from crm_contacts.audit.models import AuditEntry
from crm_contacts.common import publish_state, utcnow
from crm_contacts.companies.models import Company
from crm_contacts.contacts.models import ConsentEntry, Contact
from crm_contacts.contacts.schemas import ContactCreate
from crm_contacts.contacts.service import to_read
from crm_contacts.custom_fields.service import field_kinds, validate_custom
from crm_contacts.imports.csvfile import Row
from crm_contacts.phones import to_e164
from crm_kernel.auth import Principal
from crm_kernel.contracts.contacts import ConsentChanged, ContactCreated, ContactUpdated
from crm_kernel.db import casefold
from crm_kernel.directory import owner_filter
from crm_kernel.ids import new_id
from crm_kernel.outbox import add_event_data
from crm_kernel.problems import DomainError, Unprocessable
from crm_kernel.tables import directory_users as users

PLAIN = ("first_name", "last_name", "email", "phone", "position", "tags", "lifecycle_stage")
# Marketing consent per channel: a yes/no cell, recorded in the ledger with source "import".
CONSENT = {"consent_email": "email", "consent_sms": "sms"}
CONSENT_SOURCE = "import"
FIELDS = frozenset({*PLAIN, *CONSENT, "company", "owner_email"})
POLICIES = ("skip", "update", "create")
_TAG_SEPARATORS = re.compile(r"[,;|]")
_TRUE = frozenset({"true", "yes", "1", "да", "y"})
_FALSE = frozenset({"false", "no", "0", "нет", "n"})
# A plain ASCII address (dot-atom local part, letter-digit-hyphen labels without `--`,
# an alphabetic top-level domain) that email-validator accepts unchanged: checking it
# with this pattern skips about half of a row's validation. Anything else (quotes,
# Unicode, Punycode, over-long parts, special-use names) still goes through EmailStr.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,62}"
_PLAIN_EMAIL = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+[A-Za-z]{{2,63}})")
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)
# Core tables for the bulk inserts: the ORM's bulk insert splits a batch into a statement
# per run of rows with the same NULL columns (a third of the rows name a company, so
# alternating runs of one and two rows); Core sends the batch as one executemany.
CONTACTS = cast(Table, Contact.__table__)
AUDIT = cast(Table, AuditEntry.__table__)
LEDGER = cast(Table, ConsentEntry.__table__)
# Errors kept per job (the count goes on): enough to fix a file, not a second copy of it.
MAX_ERRORS = 1000


def _mapping_error(key: str, message: str) -> Unprocessable:
    return Unprocessable(
        f"The column mapping is not valid: {message}",
        errors=[
            {
                "field": f"mapping.{key}" if key else "mapping",
                "location": "body",
                "message": message,
            }
        ],
    )


def _target_ok(target: str) -> bool:
    return target in FIELDS or bool(re.fullmatch(r"custom\.[A-Za-z0-9_]{1,40}", target))


def resolve_mapping(header: Sequence[str], mapping: Mapping[str, str] | None) -> dict[str, str]:
    """CSV column -> contact field. Without a mapping, columns named like a field are taken."""
    if mapping is None:
        mapping = {h: h.strip().lower() for h in header if _target_ok(h.strip().lower())}
    resolved: dict[str, str] = {}
    for column, target in mapping.items():
        if column not in header:
            raise _mapping_error(column, f"the file has no column {column!r}")
        if not target:
            continue  # mapped to nothing: ignored
        if not _target_ok(target):
            raise _mapping_error(column, f"{target!r} is not a field one can import")
        if target in resolved.values():
            raise _mapping_error(column, f"{target!r} is mapped twice")
        resolved[column] = target
    if "first_name" not in resolved.values():
        raise _mapping_error("", "no column is mapped to first_name")
    return resolved


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0

    def fail(self, line: int, field_name: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"line": line, "field": field_name, "message": message})


@dataclass(slots=True)
class Candidate:
    line: int
    values: dict[str, Any]  # Contact columns
    company: str | None
    owner_email: str | None
    custom: dict[str, str]


@dataclass
class Validated:
    """A batch after the per-row checks: the good rows and the bad rows' errors so far."""

    candidates: list[Candidate]
    outcome: Outcome


@dataclass(frozen=True)
class RowChecker:
    """A row's own checks (pure Python, no database): the bulk of a batch's CPU."""

    header: list[str]
    mapping: dict[str, str]
    phone_region: str

    def __call__(self, rows: Sequence[Row]) -> Validated:
        outcome = Outcome()
        return Validated(self._candidates(rows, outcome), outcome)

    def _candidates(self, rows: Sequence[Row], outcome: Outcome) -> list[Candidate]:
        return [c for line, cells in rows if (c := self._candidate(line, cells, outcome))]

    def _candidate(self, line: int, cells: Sequence[str], outcome: Outcome) -> Candidate | None:
        if len(cells) != len(self.header):
            outcome.fail(line, "", f"{len(cells)} cells, the header has {len(self.header)}")
            return None
        raw = {
            self.mapping[h]: cell.strip()
            for h, cell in zip(self.header, cells, strict=True)
            if h in self.mapping and cell.strip()
        }
        data: dict[str, Any] = {k: raw[k] for k in PLAIN if k in raw}
        if "tags" in data:
            data["tags"] = [t.strip() for t in _TAG_SEPARATORS.split(data["tags"]) if t.strip()]
        if "lifecycle_stage" in data:
            data["lifecycle_stage"] = data["lifecycle_stage"].lower()
        email = data.get("email")
        plain = email is not None and _plain_email(email)
        try:
            valid = ContactCreate.model_validate(
                {k: v for k, v in data.items() if k != "email"} if plain else data
            )
        except ValidationError as exc:
            for error in exc.errors():
                outcome.fail(line, str(error["loc"][0]) if error["loc"] else "", error["msg"])
            return None
        try:
            phone = to_e164(valid.phone, self.phone_region) if valid.phone else None
        except DomainError:
            outcome.fail(line, "phone", f"{valid.phone!r} is not a valid phone number")
            return None
        address = email if plain else valid.email
        values = {
            "first_name": valid.first_name,
            "last_name": valid.last_name,
            "email": address.lower() if address else None,
            "phone": phone,
            "position": valid.position,
            "tags": sorted(set(valid.tags)),
            "lifecycle_stage": valid.lifecycle_stage.value if valid.lifecycle_stage else None,
        }
        values = {k: v for k, v in values.items() if k in data or k in ("email", "phone")}
        for column in CONSENT:
            if column in raw:
                try:
                    values[column] = _boolean(raw[column])
                except ValueError as exc:
                    outcome.fail(line, column, str(exc))
                    return None
        custom = {k.removeprefix("custom."): v for k, v in raw.items() if k.startswith("custom.")}
        return Candidate(line, values, raw.get("company"), raw.get("owner_email"), custom)


@dataclass
class Importer:
    """One job's rules: who imports, the columns, what to do with a duplicate."""

    principal: Principal
    header: list[str]
    mapping: dict[str, str]
    policy: str
    phone_region: str
    sqlite: bool
    # E-mails and phones this job has already taken (and the contact they went to).
    seen: dict[str, str] = field(default_factory=dict)
    _assignable: dict[str, bool] = field(default_factory=dict)

    async def _companies(self, session: AsyncSession, names: set[str]) -> dict[str, str]:
        """Lower-cased name or domain -> a live company the caller sees (the oldest)."""
        if not names:
            return {}
        rows = await session.execute(
            select(Company.id, casefold(Company.name), Company.domain)
            .where(
                Company.deleted_at.is_(None),
                owner_filter(self.principal, Company.owner_id),
                or_(casefold(Company.name).in_(names), Company.domain.in_(names)),
            )
            .order_by(Company.created_at.desc())
        )
        found: dict[str, str] = {}
        for company_id, name, domain in rows.all():
            found[name] = company_id
            if domain:
                found[domain] = company_id
        return found

    async def _owners(self, session: AsyncSession, emails: set[str]) -> dict[str, str]:
        """Lower-cased e-mail -> an active user (from the directory) the caller may assign."""
        if not emails:
            return {}
        rows = await session.execute(
            select(users.c.id, casefold(users.c.email)).where(
                casefold(users.c.email).in_(emails), users.c.is_active.is_(True)
            )
        )
        found = {}
        for user_id, email in rows.all():
            if user_id not in self._assignable:
                self._assignable[user_id] = await access.may_assign(
                    session, self.principal, user_id
                )
            if self._assignable[user_id]:
                found[email] = user_id
        return found

    async def _twins(
        self, session: AsyncSession, candidates: list[Candidate]
    ) -> dict[str, Contact]:
        """E-mail or phone -> the oldest live contact having it, in the whole base."""
        emails = {c.values["email"] for c in candidates if c.values.get("email")}
        phones = {c.values["phone"] for c in candidates if c.values.get("phone")}
        if not emails and not phones:
            return {}
        rows = await session.scalars(
            select(Contact)
            .where(
                Contact.deleted_at.is_(None),
                or_(Contact.email.in_(emails), Contact.phone.in_(phones)),
            )
            .order_by(Contact.created_at.desc(), Contact.id.desc())
        )
        twins: dict[str, Contact] = {}
        for contact in rows:
            for key in (contact.email, contact.phone):
                if key:
                    twins[key] = contact
        return twins

    async def _custom(
        self,
        session: AsyncSession,
        candidate: Candidate,
        kinds: Mapping[str, str],
        outcome: Outcome,
    ) -> dict[str, Any] | None:
        typed: dict[str, Any] = {}
        for key, text in candidate.custom.items():
            kind = kinds.get(key)
            try:
                typed[key] = _typed(text, kind)
            except ValueError as exc:
                outcome.fail(candidate.line, f"custom.{key}", str(exc))
                return None
        try:
            return await validate_custom(session, "contact", typed)
        except Unprocessable as exc:
            for error in exc.errors:
                outcome.fail(candidate.line, str(error.get("field")), str(error.get("message")))
            return None

    @property
    def checker(self) -> RowChecker:
        return RowChecker(self.header, self.mapping, self.phone_region)

    def validate(self, rows: Sequence[Row]) -> Validated:
        """The rows' own checks (see RowChecker)."""
        return self.checker(rows)

    async def run(self, session: AsyncSession, rows: Sequence[Row], *, write: bool) -> Outcome:
        """Validate a batch of rows and, if `write`, apply the good ones in `session`."""
        # In a thread, so the event loop (the outbox relay, HTTP requests) gets a turn
        # at every GIL switch meanwhile.
        return await self.apply(session, await asyncio.to_thread(self.validate, rows), write=write)

    async def apply(self, session: AsyncSession, validated: Validated, *, write: bool) -> Outcome:
        """Look-ups and duplicates for validated rows and, if `write`, the writes in `session`."""
        candidates, outcome = validated.candidates, validated.outcome
        companies = await self._companies(
            session, {c.company.lower() for c in candidates if c.company}
        )
        owners = await self._owners(
            session, {c.owner_email.lower() for c in candidates if c.owner_email}
        )
        twins = await self._twins(session, candidates)
        kinds = await field_kinds(session) if any(c.custom for c in candidates) else {}
        new_rows: list[dict[str, Any]] = []
        now = utcnow()
        for candidate in candidates:
            values = dict(candidate.values)
            if candidate.company:
                company_id = companies.get(candidate.company.lower())
                if company_id is None:
                    outcome.fail(candidate.line, "company", "no company with this name or domain")
                    continue
                values["company_id"] = company_id
            owner_id = self.principal.user_id
            if candidate.owner_email:
                found = owners.get(candidate.owner_email.lower())
                if found is None:
                    outcome.fail(
                        candidate.line,
                        "owner_email",
                        "no active user you may assign has this e-mail",
                    )
                    continue
                owner_id = found
            if candidate.custom:
                custom = await self._custom(session, candidate, kinds, outcome)
                if custom is None:
                    continue
                values["custom"] = custom
            keys = [k for k in (values.get("email"), values.get("phone")) if k]
            twin_id = next((self.seen[k] for k in keys if k in self.seen), None)
            twin = next((twins[k] for k in keys if k in twins), None)
            if (twin or twin_id) and self.policy == "skip":
                outcome.skipped += 1
                continue
            if (twin or twin_id) and self.policy == "update":
                if twin is None:
                    # Twice in this file: the first row made the contact; the later one is skipped.
                    outcome.skipped += 1
                    continue
                if not await self._may_update(session, twin):
                    outcome.fail(
                        candidate.line,
                        "email" if values.get("email") else "phone",
                        "a contact with this e-mail or phone exists that you may not change",
                    )
                    continue
                if write:
                    await self._update(session, twin, values)
                outcome.updated += 1
                continue
            contact_id = str(new_id())
            for key in keys:
                self.seen[key] = contact_id
            new_rows.append(
                {
                    "id": contact_id,
                    "first_name": values["first_name"],
                    "last_name": values.get("last_name"),
                    "email": values.get("email"),
                    "phone": values.get("phone"),
                    "company_id": values.get("company_id"),
                    "position": values.get("position"),
                    "owner_id": owner_id,
                    "tags": values.get("tags", []),
                    "lifecycle_stage": values.get("lifecycle_stage"),
                    "consent_email": values.get("consent_email", False),
                    "consent_sms": values.get("consent_sms", False),
                    "custom": values.get("custom", {}),
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "deleted_at": None,
                }
            )
        outcome.created = len(new_rows)
        if write and new_rows:
            await self._create(session, new_rows)
        outcome.errors.sort(key=lambda error: int(error["line"]))
        return outcome

    async def _may_update(self, session: AsyncSession, contact: Contact) -> bool:
        if contact.owner_id == self.principal.user_id or self.principal.is_admin:
            return True
        visible = await session.scalar(
            select(Contact.id).where(
                Contact.id == contact.id, owner_filter(self.principal, Contact.owner_id)
            )
        )
        if visible is None:
            return False
        try:
            access.ensure_may_write(self.principal, contact.owner_id)
        except DomainError:
            return False
        return True

    async def _update(
        self, session: AsyncSession, contact: Contact, values: dict[str, Any]
    ) -> None:
        """The columns the file gives, set on the existing contact (owners change by reassign)."""
        before = to_read(contact)
        changed = [
            (channel, values[column])
            for column, channel in CONSENT.items()
            if column in values and values[column] != getattr(contact, column)
        ]
        for name, value in values.items():
            if name == "custom":
                value = {**contact.custom, **value}
            if value is not None or name not in ("email", "phone"):
                setattr(contact, name, value)
        contact.updated_at = utcnow()
        await session.flush()
        read = to_read(contact)
        await self._record_consent(
            session, [(contact.id, read.email, read.phone, ch, granted) for ch, granted in changed]
        )
        await session.execute(
            insert(AUDIT),
            [
                _audit_row(
                    self.principal,
                    "update",
                    contact.id,
                    before.model_dump(mode="json"),
                    read.model_dump(mode="json"),
                )
            ],
        )
        await publish_state(session, ContactUpdated, read, actor=self.principal.user_id)

    async def _create(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Insert the batch's new contacts, with their audit rows and `created` events, in bulk."""
        await session.execute(insert(CONTACTS), rows)
        # One batch, one time: every row was stamped with the same `now`.
        stamp = _json_time(rows[0]["created_at"])
        states = [(_state(row, stamp), row["id"]) for row in rows]
        await session.execute(
            insert(AUDIT),
            [_audit_row(self.principal, "create", id_, None, state) for state, id_ in states],
        )
        await add_event_data(session, ContactCreated, states, actor=self.principal.user_id)
        await self._record_consent(
            session,
            [
                (row["id"], row["email"], row["phone"], channel, True)
                for row in rows
                for column, channel in CONSENT.items()
                if row[column]
            ],
        )

    async def _record_consent(
        self, session: AsyncSession, changes: list[tuple[str, str | None, str | None, str, bool]]
    ) -> None:
        """Ledger entries (source "import", the importer as actor) and `consent.changed` events.

        As the API does: a new contact's granted channels, an existing one's real changes.
        """
        if not changes:
            return
        at = utcnow()
        changed_at = at.isoformat()
        actor = self.principal.user_id
        entries, events = [], []
        for contact_id, email, phone, channel, granted in changes:
            entries.append(
                {
                    "id": str(new_id()),
                    "contact_id": contact_id,
                    "channel": channel,
                    "granted": granted,
                    "source": CONSENT_SOURCE,
                    "actor_id": actor,
                    "at": at,
                }
            )
            # ConsentChanged's fields, in JSON form.
            data = {
                "contact_id": contact_id,
                "channel": channel,
                "granted": granted,
                "source": CONSENT_SOURCE,
                "actor_id": actor,
                "changed_at": changed_at,
                "email": email,
                "phone": phone,
            }
            events.append((data, contact_id))
        await session.execute(insert(LEDGER), entries)
        await add_event_data(session, ConsentChanged, events, actor=actor)


_TIME = TypeAdapter(datetime)


def _json_time(at: datetime) -> str:
    """A time as pydantic writes it in JSON (what ContactRead shows)."""
    return str(_TIME.dump_python(at, mode="json"))


@functools.lru_cache(maxsize=1024)
def _uuid_text(value: str) -> str:
    """A UUID in the canonical form the API shows (ids come from few owners and companies)."""
    return str(uuid.UUID(value))


def _state(row: dict[str, Any], stamp: str) -> dict[str, Any]:
    """A new contact as the API shows it (ContactRead in JSON form), from its inserted row.

    Built by hand: ContactRead and the event models cost more per row than the
    insert itself. A test holds it equal to ContactRead and valid as ContactCreated.
    """
    return {
        "id": row["id"],
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "email": row["email"],
        "phone": row["phone"],
        "company_id": _uuid_text(row["company_id"]) if row["company_id"] else None,
        "position": row["position"],
        "owner_id": _uuid_text(row["owner_id"]),
        "tags": row["tags"],
        "lifecycle_stage": row["lifecycle_stage"],
        "consent": {"email": row["consent_email"], "sms": row["consent_sms"]},
        "custom": row["custom"],
        "version": row["version"],
        "created_at": stamp,
        "updated_at": stamp,
        "deleted_at": None,
    }


def _audit_row(
    principal: Principal,
    action: str,
    record_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> dict[str, Any]:
    """An audit table row, as `audit.service.record` writes it (in bulk here)."""
    return {
        "id": str(new_id()),
        "at": utcnow(),
        "actor_id": principal.user_id,
        "action": action,
        "record_type": "contact",
        "record_id": record_id,
        "before": before,
        "after": after,
    }


def _plain_email(email: str) -> bool:
    match = _PLAIN_EMAIL.fullmatch(email)
    if match is None or len(email) > 254 or len(match[1]) > 64:
        return False
    domain = match[2].lower()
    return not any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE)


def _typed(text: str, kind: str | None) -> Any:
    """A custom field's cell as its definition's type (the definition then checks it)."""
    if kind == "number":
        try:
            number = Decimal(text.replace(" ", "").replace(",", "."))
        except InvalidOperation as exc:
            raise ValueError("must be a number") from exc
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "bool":
        return _boolean(text)
    return text


def _boolean(text: str) -> bool:
    """true/false, yes/no, да/нет, 1/0 (any case)."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("must be true or false")
