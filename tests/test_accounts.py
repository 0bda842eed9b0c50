"""Accounts: sign-in, sessions, throttling, the first admin and when sign-in is required."""

from __future__ import annotations

import logging

import pytest

from zhiku.accounts import Accounts, Throttle, auth_enabled, token_digest
from zhiku.core.errors import AccessDenied, LoginFailed, LoginThrottled, ZhikuError
from zhiku.retrieval.types import LOCAL_ADMIN
from zhiku.store import Store


class Clock:
    """A clock the test moves forward."""

    def __init__(self):
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'zhiku.db'}")
    yield s
    s.close()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def accounts(store, clock):
    accounts = Accounts(store, session_hours=2, clock=clock, throttle=Throttle(user_free=3, address_free=5))
    accounts.create_collection(LOCAL_ADMIN, "hr", read=["hr"], write=["hr"])
    accounts.add_user(LOCAL_ADMIN, "alice", "correct horse", groups=["hr"])
    return accounts


def test_a_session_signs_the_browser_in_until_it_expires_or_logs_out(accounts, store, clock):
    session = accounts.login("alice", "correct horse", "10.1.2.3")
    assert session.user.name == "alice" and session.user.readable == frozenset({"hr"})
    assert session.expires_at == clock.now + 2 * 3600
    # the store keeps only the token's hash: a copy of the database signs nobody in
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT token_hash FROM sessions").scalars().all()
    assert rows == [token_digest(session.token)] and session.token not in rows
    assert accounts.user_for_token(session.token).name == "alice"  # a reload finds the same user
    assert accounts.user_for_token(session.token + "x") is None
    clock.now += 2 * 3600 + 1
    assert accounts.user_for_token(session.token) is None  # expired
    again = accounts.login("alice", "correct horse", "10.1.2.3")
    accounts.logout(again.token)
    assert accounts.user_for_token(again.token) is None
    actions = [e.action for e in accounts.audit_log(LOCAL_ADMIN, who="alice")]
    assert actions == ["logout", "login", "login"]


def test_a_new_password_or_a_disabled_account_ends_its_sessions(accounts):
    session = accounts.login("alice", "correct horse", None)
    accounts.reset_password(LOCAL_ADMIN, "alice", "battery staple")
    assert accounts.user_for_token(session.token) is None
    with pytest.raises(LoginFailed):
        accounts.login("alice", "correct horse", None)
    session = accounts.login("alice", "battery staple", None)
    accounts.set_disabled(LOCAL_ADMIN, "alice", True)
    assert accounts.user_for_token(session.token) is None
    with pytest.raises(LoginFailed, match="disabled"):
        accounts.login("alice", "battery staple", None)
    with pytest.raises(AccessDenied, match="disabled"):
        accounts.acting_user("alice")


def test_failed_sign_ins_slow_down_the_next_per_user_and_per_address(accounts, clock):
    for _ in range(3):
        with pytest.raises(LoginFailed, match="wrong user name or password"):
            accounts.login("alice", "guess", "10.0.0.66")
    # even the right password waits now: the guesser cannot tell
    with pytest.raises(LoginThrottled, match="try again in 2 s") as throttled:
        accounts.login("alice", "correct horse", "10.0.0.7")
    assert throttled.value.retry_after == pytest.approx(2.0)
    clock.now += 2.5
    with pytest.raises(LoginFailed):
        accounts.login("alice", "guess", "10.0.0.66")
    with pytest.raises(LoginThrottled, match="try again in 4 s"):  # the wait doubles
        accounts.login("alice", "correct horse", "10.0.0.7")
    clock.now += 4.5
    assert accounts.login("alice", "correct horse", "10.0.0.7").user.name == "alice"
    # a success resets the count for the name, not for the address that guessed
    with pytest.raises(LoginFailed):
        accounts.login("bob", "guess", "10.0.0.66")
    with pytest.raises(LoginThrottled, match="this address"):
        accounts.login("carol", "guess", "10.0.0.66")
    assert accounts.login("alice", "correct horse", "10.0.0.8").user.name == "alice"  # another address
    clock.now += 901  # old failures are forgotten
    with pytest.raises(LoginFailed, match="wrong"):
        accounts.login("carol", "guess", "10.0.0.66")
    entries = accounts.audit_log(LOCAL_ADMIN, limit=None)
    assert sum(e.action == "login.failed" for e in entries) == 6
    assert sum(e.action == "login.throttled" for e in entries) == 3
    assert {e.address for e in entries if e.action == "login.failed"} == {"10.0.0.66"}


def test_the_first_admin_is_created_once_and_a_generated_password_logged_once(store, caplog):
    accounts = Accounts(store)
    with caplog.at_level(logging.INFO, logger="zhiku.accounts"):
        password = accounts.ensure_first_admin("admin", None)
        assert accounts.ensure_first_admin("admin", None) is None
        Accounts(store).ensure_first_admin("admin", "another-password")
    assert password and sum(password in r.getMessage() for r in caplog.records) == 1
    assert accounts.login("admin", password, None).user.is_admin
    assert [a.name for a in accounts.users(LOCAL_ADMIN)] == ["admin"]
    with pytest.raises(ZhikuError, match="last enabled admin"):
        accounts.set_disabled(LOCAL_ADMIN, "admin", True)


def test_the_first_admin_takes_the_configured_password(store, caplog):
    with caplog.at_level(logging.INFO, logger="zhiku.accounts"):
        assert Accounts(store).ensure_first_admin("boss", "boss-password-1") is None
    assert "boss-password-1" not in caplog.text
    assert Accounts(store).login("boss", "boss-password-1", None).user.is_admin


def test_names_passwords_and_groups_are_checked(accounts):
    for bad in ("", "local", "a b", "x" * 65):
        with pytest.raises(ZhikuError, match="invalid user name"):
            accounts.add_user(LOCAL_ADMIN, bad, "long enough")
    with pytest.raises(ZhikuError, match="at least 8"):
        accounts.add_user(LOCAL_ADMIN, "dave", "short")
    with pytest.raises(ZhikuError, match="invalid group"):
        accounts.add_user(LOCAL_ADMIN, "dave", "long enough", groups=["a,b"])
    with pytest.raises(ZhikuError, match="already exists"):
        accounts.add_user(LOCAL_ADMIN, "alice", "long enough")
    account, generated = accounts.add_user(LOCAL_ADMIN, "erin", groups=["hr"], email="erin@example.com")
    assert len(generated) >= 16 and accounts.login("erin", generated, None).user.can_write("hr")
    assert accounts.user_for_email("ERIN@example.com").name == "erin"  # single sign-on maps by address
    assert accounts.user_for_email("nobody@example.com") is None


@pytest.mark.parametrize("mode, address, required", [
    ("auto", None, True),  # Streamlit's default: every interface
    ("auto", "", True),
    ("auto", "0.0.0.0", True),
    ("auto", "10.0.0.5", True),
    ("auto", "unix:///run/zhiku.sock", True),
    ("auto", "127.0.0.1", False),
    ("auto", "localhost", False),
    ("auto", "::1", False),
    ("on", "127.0.0.1", True),
    ("off", "0.0.0.0", False),
])
def test_sign_in_is_required_unless_the_server_listens_on_localhost_only(mode, address, required):
    assert auth_enabled(mode, address) is required
