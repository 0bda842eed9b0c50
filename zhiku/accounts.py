"""Accounts and access: who is signed in, what they may read and write, and who may manage whom.

The acting `User` is built here from the app store (readable and writable collections come from the
groups' grants; admins see everything); the ingestion and retrieval services enforce it on every call.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import re
import secrets
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from zhiku.core.errors import AccessDenied, LoginFailed, LoginThrottled, NotFound, ZhikuError
from zhiku.ingest.pipeline import check_collection
from zhiku.retrieval.types import LOCAL_ADMIN, User
from zhiku.store import Account, AuditEntry, CollectionAccess, Store

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[\w.@\-]{1,64}$")
_GROUP = re.compile(r"^[\w\-]{1,64}$")
MIN_PASSWORD = 8
# the CLI and single-user mode act under this name; no account may take it
RESERVED_NAMES = {LOCAL_ADMIN.name}


def is_loopback(address: str | None) -> bool:
    """Whether a listen address reaches this machine only (unset: Streamlit listens on every interface)."""
    if not address:
        return False
    if address.startswith("unix://"):
        return False  # a socket is there for a proxy that serves other machines
    host = address.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_enabled(mode: str, listen_address: str | None) -> bool:
    """Whether browsers must sign in: ZHIKU_AUTH on or off, or auto (on unless listening on localhost only)."""
    if mode == "on":
        return True
    if mode == "off":
        return False
    return not is_loopback(listen_address)


def check_user_name(name: str) -> str:
    """Validate an account name."""
    if not _NAME.match(name or "") or name in RESERVED_NAMES:
        raise ZhikuError(f"invalid user name {name!r}: use 1-64 letters, digits, '.', '@', '_' or '-' "
                         f"(not {', '.join(sorted(RESERVED_NAMES))})")
    return name


def check_group(name: str) -> str:
    """Validate a group name."""
    if not _GROUP.match(name or ""):
        raise ZhikuError(f"invalid group name {name!r}: use 1-64 letters, digits, '_' or '-'")
    return name


def check_password(password: str) -> str:
    """Refuse passwords too short to resist guessing."""
    if len(password or "") < MIN_PASSWORD:
        raise ZhikuError(f"the password is too short: use at least {MIN_PASSWORD} characters")
    return password


def new_password() -> str:
    """A random password to hand to a new user (about 96 bits)."""
    return secrets.token_urlsafe(12)


def token_digest(token: str) -> str:
    """What the store keeps of a session token: its sha256."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Throttle:
    """How failed sign-ins slow down the next attempt, per user name and per address."""

    user_free: int = 5  # failures of one name before waiting starts
    address_free: int = 20  # failures from one address (many names tried from one machine)
    window: float = 900.0  # failures older than this (seconds) are forgotten
    base: float = 2.0  # the first wait in seconds; it doubles with each further failure
    cap: float = 900.0

    def wait(self, failures: int, free: int) -> float:
        """Seconds to wait after the last failure."""
        if failures < free:
            return 0.0
        return min(self.cap, self.base * 2 ** (failures - free))


@dataclass
class Session:
    """A signed-in browser: the token its cookie holds, the user, and when it ends."""

    token: str
    user: User
    expires_at: float


class Accounts:
    """Sign-in, sessions, the acting user, and the admin's user and collection management."""

    def __init__(self, store: Store, *, session_hours: float = 12.0, throttle: Throttle | None = None,
                 clock: Callable[[], float] = time.time, hasher: PasswordHasher | None = None):
        self.store = store
        self.session_seconds = session_hours * 3600
        self.throttle = throttle or Throttle()
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # ------------------------------------------------------------ the acting user
    def user_of(self, account: Account) -> User:
        """The acting user of an account: admins read and write everything, members what their groups may."""
        if account.is_admin:
            return User(account.name, None, True, None)
        readable, writable = self.store.access_of(account.id)
        return User(account.name, frozenset(readable), False, frozenset(writable))

    def acting_user(self, name: str | None) -> User:
        """The user the CLI acts as (--user NAME); without a name, the local admin.

        Args:
            name: an account name, or None.

        Returns:
            The account's User with its current access.
        """
        if name is None:
            return LOCAL_ADMIN
        account = self.store.account(name)
        if account is None:
            raise NotFound(f"no user {name!r}: see `zhiku user list`")
        if account.disabled:
            raise AccessDenied(f"the account {name!r} is disabled: an admin can enable it (zhiku user enable {name})")
        return self.user_of(account)

    def user_for_token(self, token: str | None) -> User | None:
        """The user a session cookie's token belongs to, while the session lasts and the account is enabled."""
        if not token:
            return None
        account = self.store.session_account(token_digest(token), self.clock())
        return self.user_of(account) if account else None

    def user_for_email(self, email: str | None) -> User | None:
        """The enabled local account a single sign-on identity maps to (matched by e-mail address)."""
        account = self.store.account_by_email(email) if email else None
        if account is None or account.disabled:
            return None
        return self.user_of(account)

    # ------------------------------------------------------------------ sign-in
    def login(self, name: str, password: str, address: str | None) -> Session:
        """Check a password and open a session; failures slow down further attempts.

        Args:
            name: the account name as typed.
            password: the password as typed.
            address: the client's address (throttling and the audit log).

        Returns:
            The new session; its token goes into the browser's cookie and nowhere else.
        """
        now = self.clock()
        name = (name or "").strip()[:64]
        address = (address or "unknown")[:64]
        self._check_throttle(name, address, now)
        found = self.store.password_hash(name) if name else None
        account, digest = found if found else (None, None)
        ok = self._verify(digest, password or "")
        now = self.clock()  # the wait counts from the end of this attempt, however long hashing took
        if ok and account.disabled:
            self.store.record_login(name, address, False, now)
            self.store.audit(name, "login.failed", name, "account disabled", address)
            raise LoginFailed("this account is disabled: ask an admin to enable it")
        self.store.record_login(name, address, ok, now)
        if not ok:
            self.store.audit(name or "?", "login.failed", name, "wrong name or password", address)
            raise LoginFailed("wrong user name or password")
        if self.hasher.check_needs_rehash(digest):
            self.store.update_user(name, password_hash=self.hasher.hash(password))
        token = secrets.token_urlsafe(32)
        expires = now + self.session_seconds
        self.store.create_session(token_digest(token), account.id, expires, address)
        self.store.audit(name, "login", name, None, address)
        return Session(token, self.user_of(account), expires)

    def logout(self, token: str | None, address: str | None = None) -> None:
        """End a session (the cookie's token no longer signs anyone in)."""
        if token:
            name = self.store.delete_session(token_digest(token))
            if name:
                self.store.audit(name, "logout", name, None, address)

    def _check_throttle(self, name: str, address: str, now: float) -> None:
        since = now - self.throttle.window
        for what, failures, free in (
            ("account", self.store.login_failures(name=name, since=since), self.throttle.user_free),
            ("address", self.store.login_failures(address=address, since=since), self.throttle.address_free),
        ):
            count, last = failures
            remaining = (last or now) + self.throttle.wait(count, free) - now
            if count >= free and remaining > 0:
                self.store.audit(name or "?", "login.throttled", name, f"{count} failures for this {what}", address)
                raise LoginThrottled(f"too many failed sign-ins for this {what}: try again in {math.ceil(remaining)} s",
                                     remaining)

    def _verify(self, digest: str | None, password: str) -> bool:
        if not digest:
            # spend the same time as a real check, so the reply does not tell which names exist
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(secrets.token_hex(16))
            digest, password = self._dummy_hash, password + "\0"
            try:
                self.hasher.verify(digest, password)
            except (VerificationError, InvalidHashError):
                pass
            return False
        try:
            return self.hasher.verify(digest, password)
        except (VerificationError, InvalidHashError):
            return False

    # -------------------------------------------------------------- first start
    def ensure_first_admin(self, name: str, password: str | None) -> str | None:
        """Create the first admin when there is none; a generated password is logged this once.

        Args:
            name: the admin's name (ZHIKU_ADMIN_USER).
            password: the admin's password (ZHIKU_ADMIN_PASSWORD), or None to generate one.

        Returns:
            The generated password, if one was made.
        """
        if self.store.count_admins():
            return None
        check_user_name(name)
        if self.store.account(name) is not None:
            log.error("there is no enabled admin and the account %r exists: create one on the server with "
                      "`zhiku user add NAME --admin`, or set ZHIKU_ADMIN_USER to an unused name", name)
            return None
        generated = None if password else new_password()
        try:
            self.store.create_user(name, self.hasher.hash(check_password(password or generated)), actor="zhiku",
                                   is_admin=True)
        except ZhikuError:
            return None  # another process created it at the same moment (and said so)
        self.store.audit("zhiku", "user.add", name, "first admin")
        if generated:
            log.warning("first start: created the admin account %r with the one-time password %s -- sign in and "
                        "change it (zhiku user passwd %s); it is not shown again", name, generated, name)
        else:
            log.info("first start: created the admin account %r (password from ZHIKU_ADMIN_PASSWORD)", name)
        return generated

    # ------------------------------------------------------- admin: accounts
    def _require_admin(self, actor: User, what: str, target: str | None = None) -> None:
        if not actor.is_admin:
            self.store.audit(actor.name, "denied", target, what)
            raise AccessDenied(f"{actor.name} may not {what}: ask an admin")

    def users(self, actor: User) -> list[Account]:
        """Every account (admins only)."""
        self._require_admin(actor, "list users")
        return self.store.accounts()

    def add_user(self, actor: User, name: str, password: str | None = None, *, groups: Iterable[str] = (),
                 admin: bool = False, email: str | None = None) -> tuple[Account, str | None]:
        """Create an account (admins only).

        Args:
            actor: who asks.
            name: the new account's name.
            password: its password, or None to generate one.
            groups: the groups it joins (created when new).
            admin: whether it administers zhiku.
            email: the address single sign-on maps to this account.

        Returns:
            The account, and the generated password if one was made.
        """
        self._require_admin(actor, "manage users", name)
        check_user_name(name)
        groups = sorted({check_group(g) for g in groups})
        generated = None if password else new_password()
        account = self.store.create_user(name, self.hasher.hash(check_password(password or generated)),
                                         actor=actor.name, is_admin=admin, groups=groups, email=email or None)
        self.store.audit(actor.name, "user.add", name, f"admin={admin} groups={','.join(groups)}")
        return account, generated

    def reset_password(self, actor: User, name: str, password: str | None = None) -> str | None:
        """Set an account's password (admins only); its sessions end. Returns the generated password, if any."""
        self._require_admin(actor, "manage users", name)
        generated = None if password else new_password()
        self.store.update_user(name, password_hash=self.hasher.hash(check_password(password or generated)))
        self.store.audit(actor.name, "user.password", name)
        return generated

    def set_disabled(self, actor: User, name: str, disabled: bool) -> Account:
        """Disable (its sessions end) or enable an account (admins only); the last admin stays enabled."""
        self._require_admin(actor, "manage users", name)
        account = self.store.account(name)
        if account is None:
            raise NotFound(f"no user {name!r}: see `zhiku user list`")
        if disabled and account.is_admin and not account.disabled and self.store.count_admins() <= 1:
            raise ZhikuError(f"{name!r} is the last enabled admin: make another admin first")
        account = self.store.update_user(name, disabled=disabled)
        self.store.audit(actor.name, "user.disable" if disabled else "user.enable", name)
        return account

    def set_groups(self, actor: User, name: str, groups: Iterable[str]) -> Account:
        """Replace an account's groups (admins only)."""
        self._require_admin(actor, "manage users", name)
        groups = sorted({check_group(g) for g in groups})
        account = self.store.update_user(name, groups=groups)
        self.store.audit(actor.name, "user.groups", name, ",".join(groups))
        return account

    # ---------------------------------------------------- admin: collections
    def create_collection(self, actor: User, name: str, read: Iterable[str], write: Iterable[str] = ()
                          ) -> tuple[CollectionAccess, bool]:
        """Create a collection, or replace its grants, with the groups that may read and write it (admins only).

        Args:
            actor: who asks.
            name: the collection.
            read: groups whose members may search it, see its answers, citations, previews and downloads.
            write: groups whose members may upload into it and delete from it.

        Returns:
            The collection with its grants, and whether it was new.
        """
        self._require_admin(actor, "manage collections", name)
        check_collection(name)
        read = sorted({check_group(g) for g in read})
        write = sorted({check_group(g) for g in write})
        access, created = self.store.set_grants(name, read, write, actor.name)
        self.store.audit(actor.name, "collection.create" if created else "collection.grant", name,
                         f"read={','.join(read)} write={','.join(write)}")
        return access, created

    def collections(self, actor: User) -> list[CollectionAccess]:
        """The collections the user may read or write (admins: all), with their groups."""
        every = self.store.collection_access()
        if actor.is_admin:
            return every
        return [c for c in every if actor.can_read(c.name) or actor.can_write(c.name)]

    # ----------------------------------------------------------------- audit
    def audit_log(self, actor: User, *, limit: int | None = 200, who: str | None = None,
                  action: str | None = None, since: float | None = None) -> list[AuditEntry]:
        """Audit entries, newest first (admins only)."""
        self._require_admin(actor, "read the audit log")
        return self.store.audit_log(limit=limit, actor=who, action=action, since=since)
