"""Proves that tests/fake_ollama.py speaks the Ollama protocol as the official `ollama` client (0.6.x) reads it.

The failure-mode tests pin down what the real client raises, because product code must handle each of these:
- HTTP error status (404 missing model, 500)   -> ollama.ResponseError with .status_code 404 / 500
- {"error": ...} line in the middle of a stream -> ollama.ResponseError with .status_code == -1 (after partial chunks)
- a stream line that is not JSON                -> json.JSONDecodeError (a ValueError), unwrapped, after partial chunks
- connection dropped mid-body (truncated)       -> httpx.RemoteProtocolError, unwrapped (no done chunk is ever seen)
- server never answers / too slow               -> httpx.ReadTimeout, only if the Client got a timeout (default: none)
- nothing listening on the port                 -> builtin ConnectionError when stream=False, list(), show(), embed();
                                                   but httpx.ConnectError (NOT a ConnectionError) when stream=True
"""

import json
import math
import socket
import time
import urllib.request

import httpx
import ollama
import pytest

from fake_ollama import FakeOllama, fake_embedding

MODEL = "qwen2.5:7b"
MESSAGES = [{"role": "system", "content": "Answer from the context."}, {"role": "user", "content": "什么是知库?"}]


def chat_stream(fake: FakeOllama, got: list, **kw) -> None:
    """Stream a chat through the official client, appending every chunk to `got` as it arrives."""
    with ollama.Client(host=fake.host, timeout=kw.pop("timeout", 5)) as client:
        for part in client.chat(model=kw.pop("model", MODEL), messages=MESSAGES, stream=True, **kw):
            got.append(part)


def test_streamed_chat_yields_chunks_then_done_and_records_request():
    with FakeOllama(reply=lambda body: "知库 answers with cited sources.", chunk_size=5) as fake:
        got: list = []
        chat_stream(fake, got, options={"num_ctx": 8192, "temperature": 0.1}, keep_alive="10m")
    *chunks, final = got
    assert len(chunks) == math.ceil(len("知库 answers with cited sources.") / 5)
    assert all(c.done is False and c.message.role == "assistant" for c in chunks)
    assert "".join(c.message.content for c in chunks) == "知库 answers with cited sources."
    assert final.done is True and final.done_reason == "stop" and final.message.content == ""
    assert final.eval_count == len(chunks) and final.prompt_eval_count > 0 and final.model == MODEL
    assert final.created_at.endswith("Z")
    (path, body), = fake.requests
    assert path == "/api/chat" and body["stream"] is True and body["messages"] == MESSAGES
    assert body["options"] == {"num_ctx": 8192, "temperature": 0.1} and body["keep_alive"] == "10m"


def test_non_streamed_chat_and_generate():
    with FakeOllama() as fake, ollama.Client(host=fake.host) as client:
        resp = client.chat(model="qwen2.5:7b", messages=MESSAGES, stream=False)
        gen = client.generate(model="qwen2.5:7b", prompt="hello")
        gen_parts = list(client.generate(model="qwen2.5:7b", prompt="hello", stream=True))
    assert resp.done is True and resp.message.content == "Echo: 什么是知库?" and resp.done_reason == "stop"
    assert gen.response == "Echo: hello" and gen.done is True and gen.context == [1, 2, 3]
    assert "".join(p.response for p in gen_parts) == "Echo: hello" and gen_parts[-1].done is True
    assert fake.requests_to("/api/chat")[0]["stream"] is False


def test_embed_list_string_and_legacy_endpoint():
    with FakeOllama(embed_dim=1024) as fake, ollama.Client(host=fake.host) as client:
        texts = ["知库 stores documents", "知库 stores files", "weather in Paris"]
        out = client.embed(model="bge-m3", input=texts)
        single = client.embed(model="bge-m3", input="知库 stores documents")
        legacy = client.embeddings(model="bge-m3", prompt="知库 stores documents")
    vecs = out.embeddings
    assert len(vecs) == 3 and all(len(v) == 1024 for v in vecs) and out.model == "bge-m3"
    assert all(abs(sum(x * x for x in v) - 1) < 1e-9 for v in vecs)
    assert list(single.embeddings[0]) == list(vecs[0]) == list(legacy.embedding) == fake_embedding(texts[0])
    cos = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2])


def test_list_show_ps_and_version():
    with FakeOllama(models=["qwen2.5:7b", "bge-m3"]) as fake, ollama.Client(host=fake.host) as client:
        listed = client.list()
        shown = client.show("qwen2.5:7b")
        running = client.ps()
        with urllib.request.urlopen(fake.host + "/api/version") as r:
            version = json.load(r)
    assert [m.model for m in listed.models] == ["qwen2.5:7b", "bge-m3:latest"]
    assert listed.models[0].details.family == "qwen2" and listed.models[0].size > 0
    assert shown.modelinfo["qwen2.context_length"] == 32768 and shown.details.format == "gguf"
    assert shown.capabilities == ["completion"]
    assert running.models[0].context_length == 32768
    assert version["version"]


def test_plain_http_stream_is_chunked_ndjson():
    with FakeOllama(reply=lambda body: "abcdef", chunk_size=2) as fake:
        body = json.dumps({"model": MODEL, "messages": MESSAGES}).encode()
        req = urllib.request.Request(fake.host + "/api/chat", data=body)
        with urllib.request.urlopen(req) as r:
            assert r.headers["Content-Type"] == "application/x-ndjson"
            assert r.headers["Transfer-Encoding"] == "chunked"
            lines = [json.loads(line) for line in r.read().decode().splitlines()]
    assert [x["message"]["content"] for x in lines] == ["ab", "cd", "ef", ""]
    assert [x["done"] for x in lines] == [False, False, False, True]


@pytest.mark.parametrize("stream", [True, False])
def test_missing_model_is_404_response_error(stream):
    with FakeOllama(models=["qwen2.5:7b"]) as fake, ollama.Client(host=fake.host) as client:
        with pytest.raises(ollama.ResponseError) as err:
            resp = client.chat(model="llama3.1", messages=MESSAGES, stream=stream)
            list(resp) if stream else None  # a streaming call only sends the request when iterated
        with pytest.raises(ollama.ResponseError) as show_err:
            client.show("llama3.1")
    assert err.value.status_code == 404
    assert err.value.error == 'model "llama3.1" not found, try pulling it first'
    assert show_err.value.status_code == 404 and show_err.value.error == "model 'llama3.1' not found"


@pytest.mark.parametrize("stream", [True, False])
def test_http500_is_response_error(stream):
    with FakeOllama(fail="http500", error_message="out of memory") as fake, ollama.Client(host=fake.host) as client:
        with pytest.raises(ollama.ResponseError) as err:
            resp = client.chat(model=MODEL, messages=MESSAGES, stream=stream)
            list(resp) if stream else None
        with pytest.raises(ollama.ResponseError):
            client.embed(model="bge-m3", input=["x"])
    assert err.value.status_code == 500 and err.value.error == "out of memory"
    assert str(err.value) == "out of memory (status code: 500)"


def test_error_line_mid_stream_raises_response_error_after_partial_output():
    with FakeOllama(fail="error_in_stream", reply=lambda body: "0123456789", chunk_size=2) as fake:
        got: list = []
        with pytest.raises(ollama.ResponseError) as err:
            chat_stream(fake, got)
    # The HTTP status was 200 when the error line arrived, so the client reports status_code -1.
    assert err.value.status_code == -1 and "llama runner process has terminated" in err.value.error
    assert [p.message.content for p in got] == ["01", "23"] and not any(p.done for p in got)


def test_malformed_stream_line_raises_json_decode_error_after_partial_output():
    with FakeOllama(fail="malformed", reply=lambda body: "0123456789", chunk_size=2) as fake:
        got: list = []
        # The client calls json.loads on each line unguarded: the JSONDecodeError escapes unwrapped.
        with pytest.raises(json.JSONDecodeError):
            chat_stream(fake, got)
        with pytest.raises(json.JSONDecodeError), ollama.Client(host=fake.host) as client:
            client.chat(model=MODEL, messages=MESSAGES, stream=False)
    assert [p.message.content for p in got] == ["01", "23"]


def test_truncated_stream_raises_remote_protocol_error_without_done():
    with FakeOllama(fail="truncated", reply=lambda body: "0123456789", chunk_size=2) as fake:
        got: list = []
        # httpx notices the missing terminating chunk; the client does not wrap the error.
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            chat_stream(fake, got)
        with pytest.raises(httpx.RemoteProtocolError, match="peer closed connection"):
            with ollama.Client(host=fake.host) as client:
                client.chat(model=MODEL, messages=MESSAGES, stream=False)
    assert [p.message.content for p in got] == ["01", "23"] and not any(p.done for p in got)


@pytest.mark.parametrize("kw", [{"fail": "hang"}, {"delay": 3.0}, {"chunk_delay": 3.0}])
def test_hang_or_slowness_times_out_only_with_a_client_timeout(kw):
    with FakeOllama(reply=lambda body: "0123456789", chunk_size=2, **kw) as fake:
        got: list = []
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            chat_stream(fake, got, timeout=0.5)
        assert time.monotonic() - start < 2.5
        start = time.monotonic()
    assert time.monotonic() - start < 2  # stop() releases the waiting handler promptly
    assert [p.message.content for p in got] == (["01"] if "chunk_delay" in kw else [])


def test_closed_port_raises_connection_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{s.getsockname()[1]}"
    with ollama.Client(host=host, timeout=2) as client:
        with pytest.raises(ConnectionError, match="Failed to connect to Ollama"):
            client.chat(model=MODEL, messages=MESSAGES, stream=False)
        with pytest.raises(ConnectionError):
            client.list()
        # Streaming goes through a different code path that does not translate httpx.ConnectError.
        with pytest.raises(httpx.ConnectError):
            list(client.chat(model=MODEL, messages=MESSAGES, stream=True))
    assert not issubclass(httpx.ConnectError, ConnectionError)


def test_stopped_server_refuses_and_bad_fail_mode_is_rejected():
    with FakeOllama() as fake:
        host = fake.host
    with pytest.raises(ConnectionError), ollama.Client(host=host, timeout=2) as client:
        client.list()
    with pytest.raises(ValueError):
        FakeOllama(fail="refuse")
