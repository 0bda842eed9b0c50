"""Catalogue: collections, documents, jobs and index generations.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "collections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.UniqueConstraint("name", name="uq_collections_name"),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", name="fk_documents_collection_id_collections"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("blob", sa.String(32)),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("pages", sa.Integer),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("file_type", sa.String(16), nullable=False),
        sa.Column("ingested_at", sa.Float),
        sa.Column("ingested_by", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("collection_id", "path", name="uq_documents_collection_id_path"),
    )
    op.create_index("ix_documents_status", "documents", ["status"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("batch", sa.String(32), nullable=False),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", name="fk_jobs_collection_id_collections")),
        sa.Column("path", sa.Text),
        sa.Column("document_id", sa.String(32)),
        sa.Column("blob", sa.String(32)),
        sa.Column("old_blob", sa.String(32)),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("source", sa.Text),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("result", sa.String(16)),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("done", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("owner", sa.Text),
        sa.Column("lease_until", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("generation", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_jobs_state", "jobs", ["state", "id"])
    op.create_index("ix_jobs_key", "jobs", ["collection_id", "path"])
    op.create_index("ix_jobs_batch", "jobs", ["batch"])
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("embed_model", sa.Text, nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("activated_at", sa.Float),
        sa.UniqueConstraint("name", name="uq_generations_name"),
    )


def downgrade() -> None:
    op.drop_table("generations")
    op.drop_table("jobs")
    op.drop_table("documents")
    op.drop_table("collections")
