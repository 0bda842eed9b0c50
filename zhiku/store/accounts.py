"""The app store's accounts half: users, groups, collection grants, sessions, login attempts and the audit log.

Methods are mixed into Store; each is one transaction. Rules (who may do what, password hashing,
throttling) live in zhiku.accounts; this module only reads and writes rows.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from zhiku.core.errors import NotFound, ZhikuError
from zhiku.store import schema as t

_UNSET = object()


@dataclass
class Account:
    """A user account as stored (never with its password hash)."""

    id: int
    name: str
    is_admin: bool
    disabled: bool
    email: str | None
    created_at: float
    created_by: str
    updated_at: float
    has_password: bool = True
    groups: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The CLI's JSON shape of an account."""
        return {"name": self.name, "admin": self.is_admin, "disabled": self.disabled, "groups": self.groups,
                "email": self.email, "created_at": self.created_at, "created_by": self.created_by}


@dataclass
class CollectionAccess:
    """A collection with the groups that may read it and the groups that may write it."""

    name: str
    read: list[str]
    write: list[str]
    created_at: float
    created_by: str

    def to_dict(self) -> dict:
        """The CLI's JSON shape of a collection."""
        return {"name": self.name, "read": self.read, "write": self.write, "created_at": self.created_at,
                "created_by": self.created_by}


@dataclass
class AuditEntry:
    """One line of the audit log."""

    id: int
    at: float
    actor: str
    action: str
    target: str | None
    detail: str | None
    address: str | None

    def to_dict(self) -> dict:
        """The CLI's JSON shape (and the export format) of an audit entry."""
        return asdict(self)


_ACCOUNT_COLUMNS = [t.users.c.id, t.users.c.name, t.users.c.is_admin, t.users.c.disabled, t.users.c.email,
                    t.users.c.created_at, t.users.c.created_by, t.users.c.updated_at,
                    t.users.c.password_hash.is_not(None).label("has_password")]


def _insert_ignoring_duplicates(conn: Connection, table: sa.Table):
    """INSERT ... ON CONFLICT DO NOTHING on either database, so concurrent admins never collide."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class AccountStore:
    """Rows behind accounts and access; mixed into Store (which provides engine and _read)."""

    # ----------------------------------------------------------------- users
    def _accounts(self, conn: Connection, where) -> list[Account]:
        rows = conn.execute(sa.select(*_ACCOUNT_COLUMNS).where(where).order_by(t.users.c.name)).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        member = conn.execute(
            sa.select(t.memberships.c.user_id, t.groups.c.name)
            .select_from(t.memberships.join(t.groups, t.groups.c.id == t.memberships.c.group_id))
            .where(t.memberships.c.user_id.in_(ids)).order_by(t.groups.c.name)).all()
        groups: dict[int, list[str]] = {}
        for user_id, name in member:
            groups.setdefault(user_id, []).append(name)
        return [Account(**{**r._mapping, "is_admin": bool(r.is_admin), "disabled": bool(r.disabled),
                           "has_password": bool(r.has_password)}, groups=groups.get(r.id, [])) for r in rows]

    def account(self, name: str) -> Account | None:
        """The account with this name, if any."""
        with self._read() as conn, conn.begin():
            found = self._accounts(conn, t.users.c.name == name)
        return found[0] if found else None

    def account_by_email(self, email: str) -> Account | None:
        """The account a single sign-on identity (its e-mail address) maps to, if any."""
        with self._read() as conn, conn.begin():
            found = self._accounts(conn, sa.func.lower(t.users.c.email) == email.lower())
        return found[0] if found else None

    def accounts(self) -> list[Account]:
        """Every account, by name."""
        with self._read() as conn, conn.begin():
            return self._accounts(conn, sa.true())

    def count_admins(self) -> int:
        """Enabled admin accounts."""
        with self._read() as conn, conn.begin():
            return conn.execute(sa.select(sa.func.count()).select_from(t.users).where(
                t.users.c.is_admin.is_(True), t.users.c.disabled.is_(False))).scalar_one()

    def password_hash(self, name: str) -> tuple[Account, str | None] | None:
        """An account and its password hash, for signing in."""
        with self._read() as conn, conn.begin():
            found = self._accounts(conn, t.users.c.name == name)
            if not found:
                return None
            digest = conn.execute(sa.select(t.users.c.password_hash).where(t.users.c.name == name)).scalar()
        return found[0], digest

    def create_user(self, name: str, password_hash: str | None, *, actor: str, is_admin: bool = False,
                    groups: Iterable[str] = (), email: str | None = None) -> Account:
        """Add an account with its groups (created when new)."""
        now = time.time()
        try:
            with self.engine.begin() as conn:
                user_id = conn.execute(sa.insert(t.users).values(
                    name=name, password_hash=password_hash, is_admin=is_admin, disabled=False, email=email,
                    created_at=now, created_by=actor, updated_at=now).returning(t.users.c.id)).scalar_one()
                self._set_memberships(conn, user_id, groups)
                return self._accounts(conn, t.users.c.id == user_id)[0]
        except sa.exc.IntegrityError as e:
            taken = "e-mail address" if email and "email" in str(e.orig) else "name"
            raise ZhikuError(f"a user with this {taken} already exists: see `zhiku user list`") from e

    def update_user(self, name: str, *, password_hash=_UNSET, disabled=_UNSET, is_admin=_UNSET, email=_UNSET,
                    groups: Iterable[str] | None = None) -> Account:
        """Change an account; a new password or disabling it also ends its sessions."""
        values = {k: v for k, v in (("password_hash", password_hash), ("disabled", disabled),
                                    ("is_admin", is_admin), ("email", email)) if v is not _UNSET}
        with self.engine.begin() as conn:
            user_id = conn.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).scalar()
            if user_id is None:
                raise NotFound(f"no user {name!r}: see `zhiku user list`")
            if values:
                conn.execute(sa.update(t.users).where(t.users.c.id == user_id).values(**values, updated_at=time.time()))
            if "password_hash" in values or values.get("disabled"):
                conn.execute(sa.delete(t.sessions).where(t.sessions.c.user_id == user_id))
            if groups is not None:
                conn.execute(sa.delete(t.memberships).where(t.memberships.c.user_id == user_id))
                self._set_memberships(conn, user_id, groups)
            return self._accounts(conn, t.users.c.id == user_id)[0]

    # ---------------------------------------------------------------- groups
    def _ensure_groups(self, conn: Connection, names: Iterable[str]) -> dict[str, int]:
        names = sorted(set(names))
        if not names:
            return {}
        now = time.time()
        conn.execute(_insert_ignoring_duplicates(conn, t.groups), [{"name": n, "created_at": now} for n in names])
        rows = conn.execute(sa.select(t.groups.c.name, t.groups.c.id).where(t.groups.c.name.in_(names))).all()
        return dict(rows)

    def _set_memberships(self, conn: Connection, user_id: int, groups: Iterable[str]) -> None:
        ids = self._ensure_groups(conn, groups)
        if ids:
            conn.execute(sa.insert(t.memberships), [{"user_id": user_id, "group_id": g} for g in ids.values()])

    def groups(self) -> list[str]:
        """Every group name."""
        with self._read() as conn, conn.begin():
            return list(conn.execute(sa.select(t.groups.c.name).order_by(t.groups.c.name)).scalars())

    # ---------------------------------------------------------------- grants
    def set_grants(self, collection: str, read: Iterable[str], write: Iterable[str], actor: str
                   ) -> tuple[CollectionAccess, bool]:
        """Create the collection if new and replace the groups that may read and write it; True if created."""
        with self.engine.begin() as conn:
            existed = conn.execute(sa.select(t.collections.c.id).where(t.collections.c.name == collection)).scalar()
            coll = self._ensure_collection(conn, collection, actor)
            conn.execute(sa.delete(t.grants).where(t.grants.c.collection_id == coll.id))
            rows = []
            for access, names in (("read", read), ("write", write)):
                for group_id in self._ensure_groups(conn, names).values():
                    rows.append({"collection_id": coll.id, "group_id": group_id, "access": access})
            if rows:
                conn.execute(sa.insert(t.grants), rows)
            return self._collection_access(conn, t.collections.c.id == coll.id)[0], existed is None

    def _collection_access(self, conn: Connection, where) -> list[CollectionAccess]:
        colls = conn.execute(sa.select(t.collections).where(where).order_by(t.collections.c.name)).all()
        granted = conn.execute(
            sa.select(t.grants.c.collection_id, t.grants.c.access, t.groups.c.name)
            .select_from(t.grants.join(t.groups, t.groups.c.id == t.grants.c.group_id))
            .where(t.grants.c.collection_id.in_([c.id for c in colls])).order_by(t.groups.c.name)).all()
        by: dict[tuple[int, str], list[str]] = {}
        for coll_id, access, group in granted:
            by.setdefault((coll_id, access), []).append(group)
        return [CollectionAccess(c.name, by.get((c.id, "read"), []), by.get((c.id, "write"), []), c.created_at,
                                 c.created_by) for c in colls]

    def collection_access(self, names: Iterable[str] | None = None) -> list[CollectionAccess]:
        """Collections (all, or the named ones) with their read and write groups."""
        where = sa.true() if names is None else t.collections.c.name.in_(list(names))
        with self._read() as conn, conn.begin():
            return self._collection_access(conn, where)

    def access_of(self, user_id: int) -> tuple[set[str], set[str]]:
        """(collections the account may read, collections it may write) through its groups."""
        query = (
            sa.select(t.collections.c.name, t.grants.c.access)
            .select_from(t.grants.join(t.memberships, t.memberships.c.group_id == t.grants.c.group_id)
                         .join(t.collections, t.collections.c.id == t.grants.c.collection_id))
            .where(t.memberships.c.user_id == user_id))
        readable: set[str] = set()
        writable: set[str] = set()
        with self._read() as conn, conn.begin():
            for name, access in conn.execute(query):
                (readable if access == "read" else writable).add(name)
        return readable, writable

    # -------------------------------------------------------------- sessions
    def create_session(self, token_hash: str, user_id: int, expires_at: float, address: str | None) -> None:
        """Remember a signed-in browser by the hash of its token; expired sessions are dropped meanwhile."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.sessions).where(t.sessions.c.expires_at < now))
            conn.execute(sa.insert(t.sessions).values(token_hash=token_hash, user_id=user_id, created_at=now,
                                                      expires_at=expires_at, address=address))

    def session_account(self, token_hash: str, now: float) -> Account | None:
        """The enabled account a live session belongs to."""
        with self._read() as conn, conn.begin():
            user_id = conn.execute(sa.select(t.sessions.c.user_id).where(
                t.sessions.c.token_hash == token_hash, t.sessions.c.expires_at > now)).scalar()
            if user_id is None:
                return None
            found = self._accounts(conn, sa.and_(t.users.c.id == user_id, t.users.c.disabled.is_(False)))
        return found[0] if found else None

    def delete_session(self, token_hash: str) -> str | None:
        """End a session; returns the name of its account, if it existed."""
        with self.engine.begin() as conn:
            name = conn.execute(
                sa.select(t.users.c.name).select_from(t.sessions.join(t.users, t.users.c.id == t.sessions.c.user_id))
                .where(t.sessions.c.token_hash == token_hash)).scalar()
            conn.execute(sa.delete(t.sessions).where(t.sessions.c.token_hash == token_hash))
        return name

    # -------------------------------------------------------- login attempts
    def record_login(self, name: str, address: str, ok: bool, at: float, *, keep: float = 86400.0) -> None:
        """Record a sign-in attempt (attempts older than keep seconds are dropped meanwhile)."""
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t.login_attempts).where(t.login_attempts.c.at < at - keep))
            conn.execute(sa.insert(t.login_attempts).values(name=name[:64], address=address[:64], ok=ok, at=at))

    def login_failures(self, *, since: float, name: str | None = None, address: str | None = None
                       ) -> tuple[int, float | None]:
        """(failed attempts, the last one's time) after since: for a name, only those after its last success."""
        a = t.login_attempts
        with self._read() as conn, conn.begin():
            if name is not None:
                last_ok = conn.execute(sa.select(sa.func.max(a.c.at)).where(a.c.name == name[:64], a.c.ok.is_(True))
                                       ).scalar()
                where = [a.c.name == name[:64], a.c.at > max(since, last_ok or since)]
            else:
                where = [a.c.address == (address or "")[:64], a.c.at > since]
            count, last = conn.execute(sa.select(sa.func.count(), sa.func.max(a.c.at)).where(
                a.c.ok.is_(False), *where)).one()
        return int(count), last

    # ----------------------------------------------------------------- audit
    def audit(self, actor: str, action: str, target: str | None = None, detail: str | None = None,
              address: str | None = None) -> None:
        """Append an entry to the audit log."""
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.audit).values(at=time.time(), actor=actor, action=action, target=target,
                                                   detail=detail, address=address))

    def audit_log(self, *, limit: int | None = 200, actor: str | None = None, action: str | None = None,
                  since: float | None = None) -> list[AuditEntry]:
        """Audit entries, newest first, filtered by actor, action or time."""
        query = sa.select(t.audit)
        if actor is not None:
            query = query.where(t.audit.c.actor == actor)
        if action is not None:
            query = query.where(t.audit.c.action == action)
        if since is not None:
            query = query.where(t.audit.c.at >= since)
        query = query.order_by(t.audit.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn, conn.begin():
            return [AuditEntry(**r._mapping) for r in conn.execute(query).all()]
