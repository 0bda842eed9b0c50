"""Conversations: saved chats, their messages with citations, feedback on answers; dismissed upload rows.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("collections", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_conversations_user_updated_at", "conversations", ["user", "updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(32), sa.ForeignKey(
            "conversations.id", name="fk_messages_conversation_id_conversations", ondelete="CASCADE"),
            nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("citations", sa.Text, nullable=False),
        sa.Column("notice", sa.Text),
        sa.Column("mode", sa.String(16)),
        sa.Column("query", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_id_seq"),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.Integer, sa.ForeignKey(
            "messages.id", name="fk_feedback_message_id_messages", ondelete="CASCADE"), nullable=False),
        sa.Column("user", sa.Text, nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("message_id", "user", name="uq_feedback_message_id_user"),
    )
    op.create_index("ix_feedback_updated_at", "feedback", ["updated_at"])
    # a nullable column: both databases add it in place, existing rows read NULL (not dismissed)
    op.add_column("jobs", sa.Column("dismissed_at", sa.Float))
    # re-indexing a collection re-embeds unchanged originals (nullable: existing rows read NULL, not forced)
    op.add_column("jobs", sa.Column("force", sa.Boolean))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("dismissed_at")
        batch.drop_column("force")
    op.drop_table("feedback")
    op.drop_table("messages")
    op.drop_table("conversations")
