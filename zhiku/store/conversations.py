"""The app store's conversations half: saved chats, their messages and citations, feedback, upload rows.

Methods are mixed into Store; each is one transaction. Every method takes the acting user and touches
only that user's own conversations: another user's id gets the same NotFound as a missing one, so ids
reveal nothing.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from zhiku.core.errors import AccessDenied, NotFound, ZhikuError
from zhiku.store import schema as t

if TYPE_CHECKING:
    from zhiku.retrieval.types import User
    from zhiku.store import Job

TITLE_MAX = 200
AUTO_TITLE = 60  # the first question's first characters name a new conversation
COMMENT_MAX = 4000
ROLES = ("user", "assistant")
_SPACE = re.compile(r"\s+")


@dataclass
class Conversation:
    """A user's saved chat; collections=None asks every collection the user may read."""

    id: str
    user: str
    title: str
    collections: list[str] | None
    created_at: float
    updated_at: float


@dataclass
class Message:
    """One turn of a conversation, with this user's feedback on it (rating +1/-1 or None)."""

    id: int
    conversation_id: str
    seq: int
    role: str
    content: str
    citations: list[dict] = field(default_factory=list)
    notice: str | None = None
    mode: str | None = None
    query: str | None = None
    created_at: float = 0.0
    rating: int | None = None
    comment: str | None = None


def _conversation(row) -> Conversation:
    collections = json.loads(row.collections) if row.collections is not None else None
    return Conversation(row.id, row.user, row.title, collections, row.created_at, row.updated_at)


def _collections_json(collections: Iterable[str] | None) -> str | None:
    if collections is None:
        return None
    if isinstance(collections, str):
        raise ZhikuError("collections must be a list of collection names (or None for all readable)")
    return json.dumps(sorted({str(c) for c in collections}), ensure_ascii=False)


def _citation_dict(citation) -> dict:
    return citation.to_dict() if hasattr(citation, "to_dict") else dict(citation)


def _readable(citations: list[dict], user: User) -> list[dict]:
    # a citation without a collection cannot be checked, so only a user who reads everything keeps it
    return [c for c in citations
            if (user.can_read(c["collection"]) if c.get("collection") else user.readable is None)]


def _upsert(conn: Connection, table: sa.Table):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


class ConversationsMixin:
    """Rows behind saved chats and feedback; mixed into Store (which provides engine and _read)."""

    # --------------------------------------------------------- conversations
    def _own(self, conn: Connection, conv_id: str, user: User, *, lock: bool = False):
        query = sa.select(t.conversations).where(t.conversations.c.id == conv_id,
                                                 t.conversations.c.user == user.name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()  # messages of one conversation get consecutive seq numbers
        row = conn.execute(query).first() if conv_id else None
        if row is None:
            raise NotFound(f"no conversation {conv_id!r} of {user.name}: pick one from the list, or start a new chat")
        return row

    def create_conversation(self, user: User, title: str = "", collections: list[str] | None = None) -> Conversation:
        """Start an empty conversation (its title comes from the first question unless given)."""
        now = time.time()
        title = _SPACE.sub(" ", title or "").strip()[:TITLE_MAX]
        conv_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(sa.insert(t.conversations).values(
                id=conv_id, user=user.name, title=title, collections=_collections_json(collections),
                created_at=now, updated_at=now))
            return _conversation(self._own(conn, conv_id, user))

    def conversations(self, user: User, limit: int = 100) -> list[Conversation]:
        """The user's conversations, most recently used first."""
        c = t.conversations
        with self._read() as conn, conn.begin():
            rows = conn.execute(sa.select(c).where(c.c.user == user.name)
                                .order_by(c.c.updated_at.desc(), c.c.created_at.desc()).limit(limit)).all()
        return [_conversation(r) for r in rows]

    def conversation(self, conv_id: str, user: User) -> Conversation:
        """One of the user's conversations."""
        with self._read() as conn, conn.begin():
            return _conversation(self._own(conn, conv_id, user))

    def rename_conversation(self, conv_id: str, user: User, title: str) -> Conversation:
        """Give a conversation a new title (1-200 characters)."""
        title = _SPACE.sub(" ", title or "").strip()
        if not 1 <= len(title) <= TITLE_MAX:
            raise ZhikuError(f"a conversation title needs 1 to {TITLE_MAX} characters: type a shorter or non-empty one")
        with self.engine.begin() as conn:
            self._own(conn, conv_id, user)
            conn.execute(sa.update(t.conversations).where(t.conversations.c.id == conv_id).values(title=title))
            return _conversation(self._own(conn, conv_id, user))

    def set_conversation_collections(self, conv_id: str, user: User, collections: list[str] | None) -> Conversation:
        """Limit a conversation's questions to these collections (None: every collection the user may read)."""
        with self.engine.begin() as conn:
            self._own(conn, conv_id, user)
            conn.execute(sa.update(t.conversations).where(t.conversations.c.id == conv_id).values(
                collections=_collections_json(collections)))
            return _conversation(self._own(conn, conv_id, user))

    def delete_conversation(self, conv_id: str, user: User) -> None:
        """Delete a conversation with its messages and their feedback."""
        with self.engine.begin() as conn:
            self._own(conn, conv_id, user)
            ids = sa.select(t.messages.c.id).where(t.messages.c.conversation_id == conv_id)
            # explicit, not only ON DELETE CASCADE: a SQLite connection opened elsewhere may lack foreign_keys=ON
            conn.execute(sa.delete(t.feedback).where(t.feedback.c.message_id.in_(ids)))
            conn.execute(sa.delete(t.messages).where(t.messages.c.conversation_id == conv_id))
            conn.execute(sa.delete(t.conversations).where(t.conversations.c.id == conv_id))

    # -------------------------------------------------------------- messages
    def add_message(self, conv_id: str, user: User, role: str, content: str, citations: Iterable = (),
                    notice: str | None = None, mode: str | None = None, query: str | None = None) -> Message:
        """Append a question or an answer (citations as Citation or its dict) to one of the user's conversations."""
        if role not in ROLES:
            raise ZhikuError(f"unknown message role {role!r}: use 'user' or 'assistant'")
        cites = [_citation_dict(c) for c in citations]
        now = time.time()
        with self.engine.begin() as conn:
            conv = self._own(conn, conv_id, user, lock=True)
            seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.messages.c.seq), 0)).where(
                t.messages.c.conversation_id == conv_id)).scalar_one() + 1
            msg_id = conn.execute(sa.insert(t.messages).values(
                conversation_id=conv_id, seq=seq, role=role, content=content or "",
                citations=json.dumps(cites, ensure_ascii=False), notice=notice, mode=mode, query=query,
                created_at=now).returning(t.messages.c.id)).scalar_one()
            values = {"updated_at": now}
            if role == "user" and not conv.title:
                values["title"] = _SPACE.sub(" ", content or "").strip()[:AUTO_TITLE]
            conn.execute(sa.update(t.conversations).where(t.conversations.c.id == conv_id).values(**values))
        return Message(msg_id, conv_id, seq, role, content or "", _readable(cites, user), notice, mode, query, now)

    def update_message(self, message_id: int, user: User, content: str, citations: Iterable = (),
                       notice: str | None = None, mode: str | None = None, query: str | None = None) -> None:
        """Replace an answer being written (its text so far, then the finished answer) in the user's conversation."""
        cites = [_citation_dict(c) for c in citations]
        with self.engine.begin() as conn:
            conv_id = conn.execute(sa.select(t.messages.c.conversation_id).where(
                t.messages.c.id == message_id)).scalar_one_or_none()
            if conv_id is None:
                raise NotFound(f"no message {message_id}: the conversation may have been deleted")
            self._own(conn, conv_id, user)
            conn.execute(sa.update(t.messages).where(t.messages.c.id == message_id).values(
                content=content or "", citations=json.dumps(cites, ensure_ascii=False), notice=notice, mode=mode,
                query=query))

    def messages(self, conv_id: str, user: User) -> list[Message]:
        """A conversation's messages in order; citations of collections the user can no longer read are left out."""
        m, f = t.messages, t.feedback
        query = (
            sa.select(m, f.c.rating, f.c.comment)
            .select_from(m.outerjoin(f, sa.and_(f.c.message_id == m.c.id, f.c.user == user.name)))
            .where(m.c.conversation_id == conv_id).order_by(m.c.seq))
        with self._read() as conn, conn.begin():
            self._own(conn, conv_id, user)
            rows = conn.execute(query).all()
        return [Message(r.id, r.conversation_id, r.seq, r.role, r.content, _readable(json.loads(r.citations), user),
                        r.notice, r.mode, r.query, r.created_at, r.rating, r.comment) for r in rows]

    # -------------------------------------------------------------- feedback
    def set_feedback(self, message_id: int, user: User, rating: int, comment: str | None = None) -> None:
        """Rate an answer in one of the user's conversations (+1 or -1); a second rating replaces the first."""
        if rating not in (1, -1) or isinstance(rating, bool):
            raise ZhikuError(f"a rating is 1 (helpful) or -1 (not helpful), not {rating!r}")
        comment = (comment or "").strip() or None
        if comment and len(comment) > COMMENT_MAX:
            raise ZhikuError(f"the comment is too long: keep it under {COMMENT_MAX} characters")
        m, c = t.messages, t.conversations
        now = time.time()
        with self.engine.begin() as conn:
            role = conn.execute(sa.select(m.c.role).select_from(m.join(c, c.c.id == m.c.conversation_id)).where(
                m.c.id == message_id, c.c.user == user.name)).scalar()
            if role is None:
                raise NotFound(f"no message {message_id!r} in a conversation of {user.name}: reload the chat")
            if role != "assistant":
                raise ZhikuError("only answers can be rated: rate the reply below the question")
            insert = _upsert(conn, t.feedback).values(message_id=message_id, user=user.name, rating=rating,
                                                      comment=comment, created_at=now, updated_at=now)
            conn.execute(insert.on_conflict_do_update(
                index_elements=["message_id", "user"],
                set_={"rating": rating, "comment": comment, "updated_at": now}))

    def feedback_rows(self, admin: User) -> list[dict]:
        """Every rating with its question and answer, newest first (admins only)."""
        if not admin.is_admin:
            self.audit(admin.name, "denied", None, "read feedback")
            raise AccessDenied(f"{admin.name} may not read the feedback of others: ask an admin")
        m, f, c = t.messages, t.feedback, t.conversations
        before = m.alias("before")
        question = (sa.select(before.c.content).where(
            before.c.conversation_id == m.c.conversation_id, before.c.role == "user", before.c.seq < m.c.seq)
            .order_by(before.c.seq.desc()).limit(1).scalar_subquery())
        query = (
            sa.select(f.c.message_id, f.c.user, f.c.rating, f.c.comment, f.c.updated_at, m.c.content, m.c.citations,
                      m.c.mode, m.c.query, m.c.conversation_id, question.label("question"))
            .select_from(f.join(m, m.c.id == f.c.message_id).join(c, c.c.id == m.c.conversation_id))
            .order_by(f.c.updated_at.desc(), f.c.id.desc()))
        with self._read() as conn, conn.begin():
            rows = conn.execute(query).all()
        return [{"question": r.question or "", "answer": r.content, "rating": r.rating, "comment": r.comment,
                 "user": r.user, "at": r.updated_at, "citations": json.loads(r.citations), "mode": r.mode,
                 "query": r.query, "message_id": r.message_id, "conversation_id": r.conversation_id}
                for r in rows]

    # ---------------------------------------------------------- upload rows
    def recent_uploads(self, user: User, days: float = 7) -> list[Job]:
        """The user's own upload jobs of the last days (refused and failed ones too) not dismissed.

        Newest batch first, files of a batch in the order they were given.
        """
        from zhiku.store import _JOB_COLUMNS, _JOB_FROM, Job, _row  # the package imports this module first

        j = t.jobs
        query = (sa.select(*_JOB_COLUMNS).select_from(_JOB_FROM).where(
            j.c.kind == "ingest", j.c.actor == user.name, j.c.dismissed_at.is_(None),
            j.c.created_at >= time.time() - days * 86400).order_by(j.c.id.desc()).limit(1000))
        with self._read() as conn, conn.begin():
            jobs = [_row(Job, r) for r in conn.execute(query).all()]
        newest: dict[str, int] = {}
        for job in jobs:
            newest.setdefault(job.batch, job.id)
        return sorted(jobs, key=lambda job: (-newest[job.batch], job.id))

    def dismiss_uploads(self, user: User, job_ids: Iterable[int]) -> int:
        """Hide finished upload rows of the user's own from their list; returns how many were dismissed."""
        ids = [int(i) for i in job_ids]
        if not ids:
            return 0
        j = t.jobs
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(j).where(
                j.c.id.in_(ids), j.c.kind == "ingest", j.c.actor == user.name, j.c.state.in_(("done", "failed")),
                j.c.dismissed_at.is_(None)).values(dismissed_at=time.time()))
        return done.rowcount
