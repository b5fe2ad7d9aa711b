"""Test equipment: a real OpenAI-compatible HTTP server on loopback that answers from its input.

It speaks the parts of the protocol the annotators use: ``POST /v1/chat/completions`` (structured
output by ``response_format.json_schema``), and the Batch API (``/v1/files``, ``/v1/batches``). Its
answers are schema-valid and derived from the request: the segment and duration written in the
prompt, the number of images sent. Faults are queued with :meth:`StubServer.inject` and consumed by the
next requests in arrival order: 429 with Retry-After, 500, a reply slower than the client's timeout,
malformed JSON, timestamps outside the video, an empty answer.

Run it by hand for a demo: ``python tests/llm_stub.py --port 8000 --service-time 0.5``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

SEGMENT = re.compile(r"from (\d+(?:\.\d+)?)s to (\d+(?:\.\d+)?)s")
DURATION = re.compile(r"lasts (\d+(?:\.\d+)?)s")


@dataclass
class Fault:
    kind: str  # "429" | "401" | "500" | "slow" | "malformed" | "bad_times" | "empty" | "at_end" | "not_json"
    #            | "no_choices"
    retry_after: float | str | None = None  # a number of seconds, or the raw header text
    seconds: float = 0.0


@dataclass
class StubState:
    service_time: float = 0.0
    faults: deque[Fault] = field(default_factory=deque)
    received: Counter[str] = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each chat request, in order
    authorizations: set[str] = field(default_factory=set)
    prompts: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0


def _text_of(messages: list[dict[str, Any]]) -> tuple[str, int]:
    texts, images = [], 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for part in content or []:
            if part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                images += 1
    return "\n".join(texts), images


def answer_for(body: dict[str, Any], bad_times: bool = False, at_end: bool = False) -> dict[str, Any]:
    """A schema-valid answer derived from the request; ``at_end`` puts a QA span just past the segment's
    end, inside the tolerance a reply is allowed."""
    schema = body.get("response_format", {}).get("json_schema", {}).get("name", "")
    text, images = _text_of([m for m in body["messages"] if m.get("role") != "assistant"][:2])
    segment = SEGMENT.search(text)
    duration_match = DURATION.search(text)
    duration = float(duration_match.group(1)) if duration_match else 60.0
    start, end = (float(segment.group(1)), float(segment.group(2))) if segment else (0.0, duration)
    if bad_times:
        start, end = duration + 5, duration + 9
    if schema == "caption_reply":
        return {"caption": f"A scene from {start:g}s to {end:g}s, seen in {images} frames."}
    if schema == "narration_reply":
        times = [duration + 3] if bad_times else [round(duration * f, 1) for f in (0.2, 0.5, 0.8)]
        return {"items": [{"time_s": t, "text": f"Something new happens at {t:g}s."} for t in times]}
    if schema == "qa_reply":
        third = duration / 3
        spans = [(start, end)] * 3 if bad_times else [(0.5, third), (third, 2 * third), (0.5, 2 * third)]
        if at_end:
            spans[0] = (end + 0.03, end + 0.04)
        return {"items": [
            {"question": "What colour is the object on screen?", "answer": "Red.", "start_s": spans[0][0],
             "end_s": spans[0][1], "type": "time_sensitive"},
            {"question": "What colour is the object on screen?", "answer": "Blue.", "start_s": spans[1][0],
             "end_s": spans[1][1], "type": "time_sensitive"},
            {"question": "How many objects appeared in total?", "answer": "Two.", "start_s": spans[2][0],
             "end_s": spans[2][1], "type": "offline"},
        ]}
    return {"text": "unknown schema"}


def completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    prompt_tokens = sum(len(json.dumps(m)) for m in body["messages"]) // 4
    completion_tokens = max(1, len(content) // 4)
    return {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class StubServer:
    """Start with ``with StubServer() as stub:``; ``stub.base_url`` is what the client points at."""

    def __init__(self, port: int = 0, service_time: float = 0.0) -> None:
        self.state = StubState(service_time=service_time)
        self.port = port
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def inject(self, kind: str, count: int = 1, **params: Any) -> None:
        for _ in range(count):
            self.state.faults.append(Fault(kind, **params))

    # ---- handlers ---------------------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.Response:
        state = self.state
        state.received["chat"] += 1
        state.arrivals.append(time.monotonic())
        state.authorizations.add(request.headers.get("Authorization", ""))
        body = await request.json()
        state.prompts.append(_text_of(body["messages"])[0])
        fault = state.faults.popleft() if state.faults else None
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            if state.service_time:
                await asyncio.sleep(state.service_time)
            if fault and fault.kind == "429":
                after = fault.retry_after
                headers = {} if after is None else {"Retry-After": after if isinstance(after, str) else f"{after:g}"}
                return web.json_response({"error": {"message": "rate limited", "type": "rate_limit"}}, status=429,
                                         headers=headers)
            if fault and fault.kind == "401":  # as some servers do: the rejected key, echoed back
                key = request.headers.get("Authorization", "").removeprefix("Bearer ")
                return web.json_response({"error": {"message": f"Incorrect API key provided: {key}",
                                                    "type": "invalid_request_error"}}, status=401)
            if fault and fault.kind == "500":
                return web.json_response({"error": {"message": "server error", "type": "server"}}, status=500)
            if fault and fault.kind == "not_json":  # as a proxy in front of a server might answer
                return web.Response(text="<html><body>Bad Gateway</body></html>", content_type="text/html")
            if fault and fault.kind == "no_choices":
                return web.json_response({"object": "chat.completion", "choices": []})
            if fault and fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault and fault.kind == "malformed":
                content = '{"caption": "unterminated'
            elif fault and fault.kind == "empty":
                content = ""
            else:
                kind = fault.kind if fault else None
                content = json.dumps(answer_for(body, bad_times=kind == "bad_times", at_end=kind == "at_end"))
            return web.json_response(completion(body, content))
        finally:
            state.in_flight -= 1

    async def upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        file_id = f"file-{next(self._ids)}"
        self.state.files[file_id] = form["file"].file.read()
        return web.json_response({"id": file_id, "object": "file", "bytes": len(self.state.files[file_id]),
                                  "created_at": 0, "filename": form["file"].filename, "purpose": form["purpose"],
                                  "status": "processed"})

    async def content(self, request: web.Request) -> web.Response:
        return web.Response(body=self.state.files[request.match_info["file_id"]])

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        batch_id = f"batch-{next(self._ids)}"
        lines = [json.loads(line) for line in self.state.files[body["input_file_id"]].decode().splitlines() if line]
        outputs = []
        for line in lines:
            answer = json.dumps(answer_for(line["body"]))
            outputs.append({"id": f"resp-{next(self._ids)}", "custom_id": line["custom_id"],
                            "response": {"status_code": 200, "body": completion(line["body"], answer)}})
        output_id = f"file-{next(self._ids)}"
        self.state.files[output_id] = "".join(json.dumps(o) + "\n" for o in outputs).encode()
        batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"],
                 "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
                 "status": "in_progress", "created_at": 0, "output_file_id": None, "polls": 0, "_output": output_id,
                 "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
        self.state.batches[batch_id] = batch
        self.state.received["batch"] += 1
        return web.json_response({k: v for k, v in batch.items() if not k.startswith("_") and k != "polls"})

    async def get_batch(self, request: web.Request) -> web.Response:
        batch = self.state.batches[request.match_info["batch_id"]]
        batch["polls"] += 1
        if batch["polls"] >= 2:  # finished on the second poll, so a client must really poll
            batch.update(status="completed", output_file_id=batch["_output"])
            batch["request_counts"]["completed"] = batch["request_counts"]["total"]
        return web.json_response({k: v for k, v in batch.items() if not k.startswith("_") and k != "polls"})

    # ---- lifecycle ----------------------------------------------------------------------------------------
    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=256 * 2**20)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/files", self.upload)
        app.router.add_get("/v1/files/{file_id}/content", self.content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches/{batch_id}", self.get_batch)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def start(self) -> StubServer:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stub server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--service-time", type=float, default=0.0)
    args = parser.parse_args()
    with StubServer(args.port, args.service_time) as stub:
        print(f"OpenAI-compatible stub at {stub.base_url}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
