"""Settings: the one place configuration is read (environment variables and `.env`).

Entry points (the CLI and the app factory) build a `Settings` and pass it down; no
other module reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Backend = Literal["local", "openai", "extractive"]
Environment = Literal["development", "production"]

# The project root, so that the defaults work from any working directory when the
# package is installed in editable mode (the normal case: `make run`).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting, with its environment variable (the field name, upper-cased)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    # --- data -------------------------------------------------------------------
    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", alias="ASSISTANT_CORPUS_DIR")
    index_dir: Path = Field(PROJECT_ROOT / "index", alias="ASSISTANT_INDEX_DIR")
    prompts_dir: Path = Field(PROJECT_ROOT / "prompts", alias="ASSISTANT_PROMPTS_DIR")
    cache_dir: Path = Field(PROJECT_ROOT / ".cache", alias="ASSISTANT_CACHE_DIR")
    # Documents added through the API or the Library page (POST /v1/documents); indexed
    # with the corpus folder. Unset = ASSISTANT_STATE_DIR/library.
    library_dir: Path | None = Field(None, alias="ASSISTANT_LIBRARY_DIR")
    # Largest document upload (POST /v1/documents), counted as it arrives; 413 beyond it.
    max_upload_bytes: int = Field(50_000_000, alias="ASSISTANT_MAX_UPLOAD_BYTES", ge=1024)

    # --- vector store ---------------------------------------------------------------
    chroma_host: str | None = Field(None, alias="CHROMA_HOST")
    chroma_port: int = Field(8001, alias="CHROMA_PORT")

    # --- chunking (recorded in the index manifest) --------------------------------
    chunk_max_tokens: int = Field(256, alias="ASSISTANT_CHUNK_MAX_TOKENS", ge=32, le=4096)
    chunk_overlap_sentences: int = Field(1, alias="ASSISTANT_CHUNK_OVERLAP", ge=0, le=5)
    table_max_tokens: int = Field(1200, alias="ASSISTANT_TABLE_MAX_TOKENS", ge=64, le=8192)

    # --- retrieval ----------------------------------------------------------------------
    retrieval_k: int = Field(5, alias="ASSISTANT_K", ge=1, le=50)
    # An English chat question is also searched in Chinese: the chat model translates it
    # (one short call, cached) and retrieval looks for the translation and the question.
    # No effect without a chat model, or on /v1/search. false = no extra model call.
    query_translation: bool = Field(True, alias="ASSISTANT_QUERY_TRANSLATION")

    # --- chat model -------------------------------------------------------------------
    llm: Backend = Field("local", alias="ASSISTANT_LLM")
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, alias="OPENAI_API_KEY")
    model: str = Field("gpt-4o-mini", alias="ASSISTANT_MODEL")
    local_model_path: Path | None = Field(None, alias="ASSISTANT_LOCAL_MODEL_PATH")
    local_threads: int = Field(2, alias="ASSISTANT_LOCAL_THREADS", ge=1, le=256)
    local_ctx: int = Field(4096, alias="ASSISTANT_LOCAL_CTX", ge=512, le=32768)
    # A second llama.cpp process (same memory-mapped weights) for rewrites and
    # translations, so they do not evict the answer prompt's cached instructions.
    local_side_server: bool = Field(True, alias="ASSISTANT_LOCAL_SIDE_SERVER")
    local_start_timeout: float = Field(180.0, alias="ASSISTANT_LOCAL_START_TIMEOUT", gt=0)
    llm_timeout: float = Field(120.0, alias="ASSISTANT_LLM_TIMEOUT", gt=0)
    # Longest a whole model call may take, streamed answer included (LLM_TIMEOUT bounds
    # each wait: to connect, for the first token, between tokens).
    llm_deadline: float = Field(300.0, alias="ASSISTANT_LLM_DEADLINE", gt=0)
    max_answer_tokens: int = Field(400, alias="ASSISTANT_MAX_ANSWER_TOKENS", ge=16, le=8192)
    # The answer prompt's size: fixed instructions, the question and as many evidence
    # sentences as fit (tiktoken cl100k tokens; a small model reads fewer tokens faster).
    answer_prompt_tokens: int = Field(700, alias="ASSISTANT_ANSWER_PROMPT_TOKENS", ge=200, le=32768)
    # How sure the model must be that the evidence answers the question: an answer is
    # shown only if the model gives `"answerable": true` at least this probability
    # against false. Applied as a logit bias on " false" where the backend takes one (the
    # bundled model; an endpoint with ASSISTANT_LLM_JSON=llama); 0.5 = the model's own
    # choice. Calibrated on the dev set (docs/quality.md).
    answerable_min: float = Field(0.97, alias="ASSISTANT_ANSWERABLE_MIN", ge=0.5, lt=1.0)
    # How an OpenAI-compatible endpoint is asked for the structured answer: `json_schema`
    # (OpenAI structured outputs, vLLM), `json_object` (JSON mode), `llama`
    # (llama-cpp-python's server: a schema inside json_object) or `none` (prompt only).
    llm_json: Literal["json_schema", "json_object", "llama", "none"] = Field("json_schema", alias="ASSISTANT_LLM_JSON")
    # The bundled model: `prompt` asks for the JSON answer in the prompt and parses it
    # (free text if it fails); `grammar` constrains sampling with llama.cpp's JSON-schema
    # grammar, always valid JSON but measured 2.4x slower on 2 cores (benchmarks/chat_latency.py).
    local_json: Literal["prompt", "grammar"] = Field("prompt", alias="ASSISTANT_LOCAL_JSON")
    # Chats the model answers at once: 0 = the backend's own (local: 1, the llama server
    # answers one request at a time; openai: 8).
    llm_concurrency: int = Field(0, alias="ASSISTANT_LLM_CONCURRENCY", ge=0, le=256)
    # Chats that may wait for the model beyond those running; one more gets 503 + Retry-After.
    max_queue: int = Field(4, alias="ASSISTANT_MAX_QUEUE", ge=0, le=10000)
    # Longest a queued chat waits for its turn before it falls back to extractive.
    queue_timeout: float = Field(120.0, alias="ASSISTANT_QUEUE_TIMEOUT", gt=0)

    # --- access ---------------------------------------------------------------------------
    # Comma-separated bearer keys for server-to-server /v1/* access; empty = open (local use).
    api_keys: str = Field("", alias="ASSISTANT_API_KEYS", repr=False)
    state_dir: Path = Field(PROJECT_ROOT / "var", alias="ASSISTANT_STATE_DIR")
    # `production` refuses to start without a real admin token (see api.app).
    env: Environment = Field("development", alias="ASSISTANT_ENV")
    # Bearer token for admin operations over HTTP (POST /v1/admin/reindex); unset = disabled.
    admin_token: SecretStr | None = Field(None, alias="ASSISTANT_ADMIN_TOKEN")

    # --- server --------------------------------------------------------------------------
    host: str = Field("127.0.0.1", alias="ASSISTANT_HOST")
    port: int = Field(8000, alias="ASSISTANT_PORT", ge=1, le=65535)
    max_message_chars: int = Field(4000, alias="ASSISTANT_MAX_MESSAGE_CHARS", ge=1)
    max_history_turns: int = Field(20, alias="ASSISTANT_MAX_HISTORY_TURNS", ge=0)
    # Largest request body the API reads (413 beyond it); the widget has its own limit.
    max_body_bytes: int = Field(1_000_000, alias="ASSISTANT_MAX_BODY_BYTES", ge=1024)

    @field_validator("chroma_host", "openai_base_url", "library_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # An empty variable in a .env file means "not set", not "the empty host".
        return None if value == "" else value

    @property
    def library_folder(self) -> Path:
        return self.library_dir or self.state_dir / "library"

    @property
    def document_folders(self) -> list[Path]:
        """The folders indexed together: the corpus, then the uploaded documents."""
        return [self.corpus_dir, self.library_folder]

    @property
    def models_dir(self) -> Path:
        return self.cache_dir / "models"

    @property
    def api_key_list(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    # --- widget abuse -----------------------------------------------------------------
    # Header a trusted reverse proxy sets to the client's address (e.g. X-Forwarded-For);
    # its right-most address is used (the one the proxy appended). Unset = the socket peer
    # address, and any such header from clients is ignored. Set it only behind a proxy
    # that always sets or appends this header.
    trusted_proxy_header: str | None = Field(None, alias="ASSISTANT_TRUSTED_PROXY_HEADER")
    # Widget requests one visitor (client address; IPv6 by /64) may make under the
    # partner's own quota, so that one script cannot use up a partner's day.
    widget_visitor_per_minute: int = Field(10, alias="ASSISTANT_WIDGET_VISITOR_PER_MINUTE", ge=1)
    widget_visitor_per_day: int = Field(100, alias="ASSISTANT_WIDGET_VISITOR_PER_DAY", ge=1)
    # Failed partner-key checks allowed per client address and per key id in a window;
    # beyond them 429 + Retry-After, and no expensive check runs.
    widget_auth_failures: int = Field(10, alias="ASSISTANT_WIDGET_AUTH_FAILURES", ge=1)
    widget_auth_window: float = Field(300.0, alias="ASSISTANT_WIDGET_AUTH_WINDOW", gt=0)
    # Server secret mixed into partner-key hashes (HMAC-SHA256): 32+ random characters,
    # e.g. `openssl rand -hex 32` (shorter ones work, with a warning in the log).
    # Unset = a random one kept in ASSISTANT_STATE_DIR/key_pepper (mode 0600), created on
    # first use, in development and production alike; set it (from a secret store) to
    # keep the pepper apart from partners.db. Changing it later: keys hashed with the
    # state-dir pepper keep working while that file exists and are re-hashed on use.
    key_pepper: SecretStr | None = Field(None, alias="ASSISTANT_KEY_PEPPER", repr=False)
    # Days of widget usage records (requests and daily refusal counts) kept.
    widget_usage_retention_days: int = Field(90, alias="ASSISTANT_WIDGET_USAGE_RETENTION_DAYS", ge=1)

    @field_validator("trusted_proxy_header", "key_pepper", mode="before")
    @classmethod
    def _widget_empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    # --- exposure (limits, production) ----------------------------------------------
    # Largest body POST /v1/widget/chat reads (413 beyond it, counted as it arrives): the
    # widget is public, so it gets far less than the API. 64 KiB holds the longest message
    # in Chinese (4000 characters, 12 kB) with the ten history turns widget.js sends, at
    # ordinary lengths.
    widget_max_body_bytes: int = Field(65_536, alias="ASSISTANT_WIDGET_MAX_BODY_BYTES", ge=1024)
    # In production /docs, /redoc and /openapi.json are off unless this is true.
    public_docs: bool = Field(False, alias="ASSISTANT_PUBLIC_DOCS")

    # --- login and warm start ------------------------------------------------------------
    # Startup waits up to this many seconds for the warm-up (models, tokenizers, one search
    # end to end) before the server takes connections; /readyz is 503 until it is done.
    warm_start_wait: float = Field(60.0, alias="ASSISTANT_WARM_START_WAIT", ge=0)
    # With API keys set, /ui and /sources need a login (an API key or an ASSISTANT_UI_USERS
    # user) unless this is true.
    public_ui: bool = Field(False, alias="ASSISTANT_PUBLIC_UI")
    # UI users: comma-separated `name:scrypt$<salt hex>$<hash hex>` entries
    # (`assistant.web.api.session.hash_password` makes one).
    ui_users: str = Field("", alias="ASSISTANT_UI_USERS", repr=False)
    # How long a login lasts, and how long a signed passage link (widget citations) works.
    session_hours: float = Field(12.0, alias="ASSISTANT_SESSION_HOURS", gt=0, le=24 * 30)
    passage_link_hours: float = Field(24.0, alias="ASSISTANT_PASSAGE_LINK_HOURS", gt=0, le=24 * 365)
    # Secret that signs login cookies and passage links; unset = a random one kept in
    # ASSISTANT_STATE_DIR/session_secret (mode 0600), created on first use.
    session_secret: SecretStr | None = Field(None, alias="ASSISTANT_SESSION_SECRET", repr=False)
    # Failed logins allowed per client address in ASSISTANT_WIDGET_AUTH_WINDOW; then 429.
    login_failures: int = Field(10, alias="ASSISTANT_LOGIN_FAILURES", ge=1)

    @field_validator("session_secret", mode="before")
    @classmethod
    def _login_empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    # --- operations ------------------------------------------------------------------
    # Log lines of `assistant serve`: `text`, or `json` (one object per line, with the
    # request id). Unset = text in development, json in production.
    log_format: Literal["text", "json"] | None = Field(None, alias="ASSISTANT_LOG_FORMAT")
    # GET /metrics (Prometheus) is open in development; in production it needs the admin
    # token (Bearer) unless this is true.
    public_metrics: bool = Field(False, alias="ASSISTANT_PUBLIC_METRICS")
    # OpenTelemetry: set to an OTLP/HTTP collector's base URL (e.g. http://localhost:4318)
    # to export a trace of every request; unset = no tracing, nothing imported.
    otlp_endpoint: str | None = Field(None, alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str = Field("techtransfer-assistant", alias="OTEL_SERVICE_NAME")

    @field_validator("log_format", "otlp_endpoint", mode="before")
    @classmethod
    def _operations_empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def log_style(self) -> Literal["text", "json"]:
        return self.log_format or ("text" if self.env == "development" else "json")

    # --- replicas ----------------------------------------------------------------------
    # With CHROMA_HOST set, the manifest, cleaned documents and originals live on the
    # Chroma server too, in collections `<prefix>_meta` and `<prefix>_docs` (one prefix per
    # deployment sharing a server), so every replica serves the same index.
    chroma_prefix: str = Field(
        "assistant", alias="ASSISTANT_CHROMA_PREFIX", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{1,40}$"
    )
    # Seconds between checks of the index version; a replica reloads when it changed
    # (an ingest, upload or delete through another replica, or `assistant ingest`). 0 = off.
    index_poll: float = Field(5.0, alias="ASSISTANT_INDEX_POLL", ge=0)
    # `assistant model-server`: where it listens, and the Bearer key it requires (unset = open).
    model_server_host: str = Field("127.0.0.1", alias="ASSISTANT_MODEL_SERVER_HOST")
    model_server_port: int = Field(8002, alias="ASSISTANT_MODEL_SERVER_PORT", ge=1, le=65535)
    model_server_key: SecretStr | None = Field(None, alias="ASSISTANT_MODEL_SERVER_KEY", repr=False)

    @field_validator("model_server_key", mode="before")
    @classmethod
    def _replicas_empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    # --- database ----------------------------------------------------------------------
    # Partners, quotas, usage and feedback. Unset = SQLite files in ASSISTANT_STATE_DIR
    # (partners.db, feedback.db), migrated automatically. A PostgreSQL URL
    # (postgresql+pg8000://USER:PASSWORD@HOST:5432/NAME, or postgresql+psycopg://… with psycopg
    # installed) = one database shared by every server process, migrated by `assistant db upgrade`.
    database_url: SecretStr | None = Field(None, alias="ASSISTANT_DATABASE_URL", repr=False)

    @field_validator("database_url", mode="before")
    @classmethod
    def _database_empty_is_none(cls, value: object) -> object:
        return None if value == "" else value
