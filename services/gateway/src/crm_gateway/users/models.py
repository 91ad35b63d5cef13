"""The users table: staff accounts with a role, teams and an argon2id password hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_gateway.orm import Base, new_uuid, utcnow
from crm_gateway.teams.models import Team, team_members
from crm_kernel.db import UtcDateTime


class User(Base):
    """A person who logs in; `email` is stored lower-cased and is unique."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Set once the user is offboarded (their records handed to a successor).
    offboarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Two-factor authentication (auth/totp.py): secrets are stored encrypted;
    # `pending` is the one set up but not confirmed with a code yet.
    totp_secret: Mapped[str | None] = mapped_column(String(400))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(400))
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The last time step a code was accepted for: a code is good once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    # Loaded with the user (one extra IN query per page), never lazily: lazy
    # loads are not possible under asyncio.
    teams: Mapped[list[Team]] = relationship(secondary=team_members, lazy="selectin")

    __mapper_args__ = {"version_id_col": version}

    @property
    def team_ids(self) -> list[str]:
        return sorted(team.id for team in self.teams)
