"""Staff accounts, roles, departments and API tokens.

A user has one scope (a region and everything under it), optionally a department (city
departments handle escalated work orders), and one or more roles.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, DateTime, ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from . import clock
from .db import Base, session, utcnow
from .regions import Region, Scope

ROLES = ("admin", "editor", "reviewer", "handler", "grid_worker", "noc", "analyst", "clerk")

ROLE_NAMES = {"admin": "管理员", "editor": "编辑", "reviewer": "审核员", "handler": "诉求办理员",
              "grid_worker": "网格员", "noc": "网管中心", "analyst": "分析员", "clerk": "办事员"}

_hasher = PasswordHasher()


class Department(Base):
    """A city department that can take escalated work orders (e.g. 市民政局)."""

    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stable code, e.g. civil-affairs.
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    #: The region the department belongs to (the city).
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    region: Mapped[Region] = relationship()


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    #: Argon2id hash; never the password.
    password_hash: Mapped[str] = mapped_column(String(255))
    #: Name shown in the staff web and the audit trail.
    display_name: Mapped[str] = mapped_column(String(64))
    #: The root of this user's scope.
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id"))
    #: Department code for department handlers.
    department_code: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    region: Mapped[Region] = relationship()
    role_rows: Mapped[list["UserRole"]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> set[str]:
        return {r.role for r in self.role_rows}

    def has_role(self, *roles: str) -> bool:
        """True when the user holds any of ``roles`` (admins hold every role)."""
        mine = self.roles
        return "admin" in mine or bool(mine.intersection(roles))

    @property
    def scope(self) -> Scope:
        return Scope.of(self.region)

    def set_password(self, password: str) -> None:
        self.password_hash = _hasher.hash(password)

    def check_password(self, password: str) -> bool:
        try:
            return _hasher.verify(self.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    #: One of ROLES.
    role: Mapped[str] = mapped_column(String(16), primary_key=True)


class ApiToken(Base):
    """A bearer token for the API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    user: Mapped[User] = relationship()


class RevokedSession(Base):
    """A staff web session ended by logout: its cookie (signed, so otherwise valid until it
    expires) is refused from then on. Rows are dropped once the cookie would have expired."""

    __tablename__ = "revoked_sessions"

    #: The random id put in the session cookie at login.
    sid: Mapped[str] = mapped_column(String(43), primary_key=True)
    #: When the cookie would have expired anyway (then the row can go).
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


def revoke_session(sid: str, lifetime: dt.timedelta) -> None:
    """Refuse the session ``sid`` from now on (flushes; caller commits)."""
    from sqlalchemy import delete

    now = utcnow()
    session.execute(delete(RevokedSession).where(RevokedSession.expires_at < now))
    if session.get(RevokedSession, sid) is None:
        session.add(RevokedSession(sid=sid, expires_at=now + lifetime))
    session.flush()


def session_revoked(sid: str | None) -> bool:
    """True for a session ended by logout (and for cookies from before sessions had ids)."""
    return not sid or session.get(RevokedSession, sid) is not None


def revoke_token(token: str) -> bool:
    """Revoke one bearer token at once (flushes; caller commits); False when unknown."""
    row = session.scalar(select(ApiToken).where(
        ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest()))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def revoke_all_tokens(user: User) -> int:
    """Revoke every bearer token of ``user`` (password change); returns how many."""
    from sqlalchemy import delete

    n = session.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount
    session.flush()
    return n or 0


def user_by_username(username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(username: str, password: str, roles: list[str] | tuple[str, ...], region: Region,
                display_name: str | None = None, department_code: str | None = None) -> User:
    """Create a user (flushes; caller commits). Raises ValueError on a bad role or a taken name."""
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise ValueError(f"unknown role: {', '.join(bad)} (roles: {', '.join(ROLES)})")
    if user_by_username(username):
        raise ValueError(f"username already exists: {username}")
    user = User(username=username, display_name=display_name or username, region=region,
                department_code=department_code)
    user.set_password(password)
    user.role_rows = [UserRole(role=r) for r in roles]
    session.add(user)
    session.flush()
    return user


def issue_token(user: User, ttl_s: int) -> tuple[str, dt.datetime]:
    """A new bearer token for ``user`` (returned once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(seconds=ttl_s)
    session.add(ApiToken(token_hash=hashlib.sha256(token.encode()).hexdigest(), user=user,
                         expires_at=expires))
    session.flush()
    return token, expires


def user_for_token(token: str) -> User | None:
    """The active user of a valid, unexpired token."""
    row = session.scalar(select(ApiToken).where(
        ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest()))
    if row is None:
        return None
    expires = clock.aware(row.expires_at)
    if expires < utcnow() or not row.user.active:
        return None
    return row.user
