"""A protocol-level stand-in for the Ollama HTTP API, served over real HTTP on 127.0.0.1 (stdlib only)."""

import contextlib
import hashlib
import json
import math
import re
import socket
import sys
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

FAIL_MODES = (None, "http500", "truncated", "malformed", "error_in_stream", "hang")
MODEL_PATHS = ("/api/chat", "/api/generate", "/api/embed", "/api/embeddings")
EMBEDDING_HINTS = ("embed", "bge", "minilm", "e5", "gte")
_TOKEN_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W_]+")


def normalize_name(name: str) -> str:
    """Return the model name with Ollama's implicit ':latest' tag."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def now_iso() -> str:
    """Return the current UTC time in Ollama's RFC 3339 form."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def default_reply(body: dict) -> str:
    """Echo the last user message (chat) or the prompt (generate)."""
    users = [m.get("content") or "" for m in body.get("messages") or [] if m.get("role") == "user"]
    return "Echo: " + (users[-1] if users else body.get("prompt") or "")


def fake_embedding(text: str, dim: int = 1024) -> list[float]:
    """Deterministic unit vector; texts sharing words/CJK characters get higher cosine similarity."""
    vec = [0.0] * dim
    for tok in _TOKEN_RE.findall(text.lower()):
        h = hashlib.blake2b(tok.encode(), digest_size=8).digest()
        vec[int.from_bytes(h[:4], "little") % dim] += 1.0 if h[4] & 1 else -1.0
    if not any(vec):  # no tokens (empty or punctuation only): dense hash of the whole text
        raw = hashlib.shake_256(text.encode()).digest(2 * dim)
        vec = [int.from_bytes(raw[2 * i:2 * i + 2], "little") / 32767.5 - 1.0 for i in range(dim)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that remembers its FakeOllama and its open connections."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, fake: "FakeOllama"):
        """Bind 127.0.0.1 on a free port chosen by the OS."""
        self.fake = fake
        self.conns: set[socket.socket] = set()
        self.conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up (timeouts, stop()); report anything else."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes Ollama API requests to the owning FakeOllama."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        """Track the connection so stop() can sever keep-alive sockets."""
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self) -> None:
        """Untrack the connection."""
        with self.server.conns_lock:
            self.server.conns.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _route(self) -> None:
        """Hand GET, HEAD and POST requests to the FakeOllama."""
        self.server.fake._dispatch(self, self.command)

    do_GET = do_HEAD = do_POST = _route

    def send_json(self, status: int, obj: Any, content_type: str = "application/json; charset=utf-8",
                  cut: bool = False) -> None:
        """Send a JSON (or raw text) body with Content-Length; cut=True sends half of it, then hangs up."""
        data = obj.encode() if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if cut else data)
        self.close_connection = self.close_connection or cut

    def start_stream(self) -> None:
        """Send headers for a chunked NDJSON stream, as Ollama does."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def send_line(self, line: Any) -> None:
        """Send one NDJSON line as one HTTP chunk."""
        data = (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)).encode() + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        """Send the terminating zero-length chunk."""
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeOllama:
    """In-process fake Ollama server; use as a context manager or call start()/stop()."""

    def __init__(self, models: list[str] | None = None, reply: Callable[[dict], str] = default_reply,
                 chunk_size: int = 4, delay: float = 0.0, chunk_delay: float = 0.0, fail: str | None = None,
                 embed_dim: int = 1024, context_length: int = 32768, family: str = "qwen2",
                 error_message: str = "llama runner process has terminated: signal: killed", version: str = "0.6.8"):
        """Configure the fake; every attribute may also be changed while it runs."""
        if fail not in FAIL_MODES:
            raise ValueError(f"fail must be one of {FAIL_MODES}")
        self.models = [normalize_name(m) for m in (models if models is not None else ["qwen2.5:7b", "bge-m3"])]
        self.reply, self.chunk_size, self.delay, self.chunk_delay = reply, chunk_size, delay, chunk_delay
        self.fail, self.embed_dim, self.context_length, self.family = fail, embed_dim, context_length, family
        self.error_message, self.version = error_message, version
        self.requests: list[tuple[str, Any]] = []
        self._stopped = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """Base URL, e.g. 'http://127.0.0.1:54321'."""
        assert self._server is not None, "FakeOllama is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeOllama":
        """Bind an OS-chosen port and serve in a daemon thread."""
        self._stopped.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-ollama",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release hung handlers and close every open connection."""
        if self._server is None:
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        with self._server.conns_lock:
            conns = list(self._server.conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    __enter__ = start

    def __exit__(self, *exc: Any) -> None:
        """Stop the server."""
        self.stop()

    def requests_to(self, path: str) -> list[Any]:
        """Bodies of the recorded requests to one path."""
        return [body for p, body in self.requests if p == path]

    def _dispatch(self, h: _Handler, method: str) -> None:
        """Parse, record and route one request."""
        path = h.path.split("?", 1)[0]
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as exc:
            self.requests.append((path, raw.decode(errors="replace")))
            return h.send_json(400, {"error": f"invalid request body: {exc}"})
        self.requests.append((path, body if raw.strip() else None))
        if path in ("/", "") and method in ("GET", "HEAD"):
            return h.send_json(200, "Ollama is running", "text/plain; charset=utf-8")
        routes = {("GET", "/api/version"): lambda: {"version": self.version},
                  ("GET", "/api/tags"): lambda: {"models": [self._model_entry(normalize_name(m)) for m in self.models]},
                  ("GET", "/api/ps"): lambda: {"models": [  # every installed model reported as loaded
                      {**self._model_entry(normalize_name(m)), "expires_at": "2099-01-01T00:00:00Z", "size_vram": 0,
                       "context_length": self.context_length} for m in self.models]}}
        if (method, path) in routes:
            return h.send_json(200, routes[(method, path)]())
        if method != "POST" or path not in MODEL_PATHS + ("/api/show",):
            return h.send_json(404, "404 page not found", "text/plain")
        model = body.get("model") or body.get("name") or ""
        if not model:
            return h.send_json(400, {"error": "model is required"})
        if normalize_name(model) not in map(normalize_name, self.models):
            msg = (f"model '{model}' not found" if path == "/api/show"  # ShowHandler's wording differs
                   else f'model "{model}" not found, try pulling it first')
            return h.send_json(404, {"error": msg})
        if path == "/api/show":
            return h.send_json(200, self._show(normalize_name(model)))
        if (self.fail == "hang" or self.delay) and self._stopped.wait(None if self.fail == "hang" else self.delay):
            h.close_connection = True  # stopped while hanging or delaying: hang up without an answer
            return None
        if self.fail == "http500":
            return h.send_json(500, {"error": self.error_message})
        if path == "/api/embed":
            texts = [body.get("input")] if isinstance(body.get("input"), str) else list(body.get("input") or [])
            dim = body.get("dimensions") or self.embed_dim
            return h.send_json(200, {"model": model, "embeddings": [fake_embedding(t, dim) for t in texts],
                                     "total_duration": 14143917, "load_duration": 1019500,
                                     "prompt_eval_count": sum(len(_TOKEN_RE.findall(t)) for t in texts)})
        if path == "/api/embeddings":
            return h.send_json(200, {"embedding": fake_embedding(body.get("prompt") or "", self.embed_dim)})
        return self._generate(h, path, model, body)

    def _generate(self, h: _Handler, path: str, model: str, body: dict) -> None:
        """Answer /api/chat or /api/generate, streamed (default) or as one object."""
        chat = path == "/api/chat"
        text = "" if (chat and not body.get("messages")) or (not chat and not body.get("prompt")) else self.reply(body)
        size = max(1, self.chunk_size)
        chunks = [text[i:i + size] for i in range(0, len(text), size)]
        prompt = json.dumps(body.get("messages") if chat else body.get("prompt"), ensure_ascii=False)

        def part(content: str, done: bool) -> dict:
            """One response object in Ollama's shape."""
            obj: dict[str, Any] = {"model": model, "created_at": now_iso()}
            obj.update({"message": {"role": "assistant", "content": content}} if chat else {"response": content})
            obj["done"] = done
            if done:
                obj.update(done_reason="stop" if text else "load", total_duration=1_000_000 * (len(chunks) + 1),
                           load_duration=100_000, prompt_eval_count=max(1, len(prompt) // 4),
                           prompt_eval_duration=200_000, eval_count=len(chunks), eval_duration=800_000 * len(chunks))
                if not chat:
                    obj["context"] = [1, 2, 3]
            return obj

        if body.get("stream") is False:
            if self.fail == "error_in_stream":
                return h.send_json(500, {"error": self.error_message})
            if self.fail == "malformed":
                return h.send_json(200, '{"model": "' + model + '", "message": {not json')
            return h.send_json(200, part(text, True), cut=self.fail == "truncated")
        h.start_stream()
        half = max(1, len(chunks) // 2)
        for i, chunk in enumerate(chunks):
            if i and self.chunk_delay:
                self._stopped.wait(self.chunk_delay)
            if self._stopped.is_set():
                h.close_connection = True
                return None
            if i == half and self.fail in ("truncated", "malformed", "error_in_stream"):
                if self.fail == "truncated":  # no done line, no terminating chunk: the peer just vanishes
                    h.close_connection = True
                    return None
                h.send_line("{not json" if self.fail == "malformed" else {"error": self.error_message})
                if self.fail == "error_in_stream":  # Ollama ends the stream right after an error line
                    return h.end_stream()
            h.send_line(part(chunk, False))
        h.send_line(part("", True))
        h.end_stream()

    def _details(self) -> dict:
        """The 'details' object shared by tags, ps and show."""
        return {"parent_model": "", "format": "gguf", "family": self.family, "families": [self.family],
                "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}

    def _model_entry(self, name: str) -> dict:
        """One /api/tags entry."""
        return {"name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 4_683_087_332,
                "digest": hashlib.sha256(name.encode()).hexdigest(), "details": self._details()}

    def _show(self, name: str) -> dict:
        """The /api/show body with details and model_info (context length included)."""
        arch, embedding = self.family, any(k in name.lower() for k in EMBEDDING_HINTS)
        return {"modelfile": f"FROM {name}\n", "parameters": "stop \"<|im_end|>\"", "template": "{{ .Prompt }}",
                "details": self._details(), "modified_at": "2025-01-01T00:00:00Z",
                "capabilities": ["embedding"] if embedding else ["completion"],
                "model_info": {"general.architecture": arch, "general.parameter_count": 7_615_616_512,
                               f"{arch}.context_length": self.context_length,
                               f"{arch}.embedding_length": self.embed_dim if embedding else 3584}}
