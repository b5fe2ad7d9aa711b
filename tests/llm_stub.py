"""Test equipment: a real OpenAI-compatible HTTP server on loopback that answers from its input.

It speaks the parts of the protocol the annotators use: ``POST /v1/chat/completions`` (structured
output by ``response_format.json_schema``), and the Batch API (``/v1/files``, ``/v1/batches``). Its
answers are schema-valid and derived from the request: the segment and duration written in the
prompt, the number of images sent. Faults are queued with :meth:`StubServer.inject` and consumed by the
next requests in arrival order: 429 with Retry-After, 500, a reply slower than the client's timeout,
malformed JSON, timestamps outside the video, an empty answer. A fault given a ``schema`` waits for
a request of that reply schema (one stage of a multi-stage pipeline), whatever arrives before it.

The multi-stage pipelines' stages (streamo_data/sources/annotators/staged.py) are answered by contract too:
window notes that repeat within each 5 s of video (so the rewrite has repeats to remove), a rewrite
that keeps each distinct note once, captions that name their segment and are grounded back to it,
queries that rephrase their caption, and a question with three timed, changing answers. Their own
faults: ``disagree`` (the grounded span misses the caption's), ``negative`` (the rewrite rejects the
video), ``repeat`` (a query that copies its caption, QA answers that do not change).

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
WINDOW_LINE = re.compile(r"^(\d+(?:\.\d+)?)s-(\d+(?:\.\d+)?)s: frames at", re.MULTILINE)
NOTE = re.compile(r"^(\d+(?:\.\d+)?)s-(\d+(?:\.\d+)?)s: (.+)$", re.MULTILINE)
QUOTED = re.compile(r'"([^"]+)"')


def _quoting(answer: Any, extra: str) -> Any:
    """``answer`` with ``extra`` appended to its first string value (wherever it is nested)."""
    if isinstance(answer, str):
        return answer + extra
    if isinstance(answer, dict):
        for key, value in answer.items():
            changed = _quoting(value, extra)
            if changed != value:
                return {**answer, key: changed}
    if isinstance(answer, list):
        for index, value in enumerate(answer):
            changed = _quoting(value, extra)
            if changed != value:
                return [*answer[:index], changed, *answer[index + 1:]]
    return answer


@dataclass
class Fault:
    kind: str  # "429" | "401" | "500" | "slow" | "malformed" | "bad_times" | "empty" | "at_end" | "not_json"
    #            | "no_choices" | "echo_key"
    #            | "disagree" | "negative" | "repeat" | "drop_window" (the pipelines' stages)
    retry_after: float | str | None = None  # a number of seconds, or the raw header text
    seconds: float = 0.0
    schema: str | None = None  # only a request with this reply schema consumes the fault


@dataclass
class StubState:
    service_time: float = 0.0
    faults: deque[Fault] = field(default_factory=deque)
    received: Counter[str] = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each chat request, in order
    authorizations: set[str] = field(default_factory=set)
    prompts: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every chat request as it arrived
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


def schema_of(body: dict[str, Any]) -> str:
    return str(body.get("response_format", {}).get("json_schema", {}).get("name", ""))


def stage_answer(schema: str, text: str, start: float, end: float, duration: float,
                 fault: str | None) -> dict[str, Any] | None:
    """The multi-stage pipelines' stages; None for any other schema."""
    if schema == "narration_window_reply":
        return {"change": f"Scene {int(start // 5) + 1} is on screen."}
    if schema == "narration_windows_reply":  # the same answer per window as one window a request gets
        windows = [{"start_s": float(a), "end_s": float(b), "change": f"Scene {int(float(a) // 5) + 1} is on screen."}
                   for a, b in WINDOW_LINE.findall(text)]
        return {"windows": windows[:-1] if fault == "drop_window" else windows}
    if schema == "narration_rewrite_reply":
        if fault == "negative":
            return {"negative": True, "reason": "a static scene with nothing to narrate", "items": []}
        items, last = [], None
        for a, _, note in NOTE.findall(text):
            if note != last and note.lower().rstrip(".") != "no change":
                items.append({"time_s": duration + 3 if fault == "bad_times" else float(a),
                              "text": " ".join(note.split()[:5])})
            last = note
        return {"negative": False, "reason": "", "items": items}
    if schema in ("caption_segment_reply", "action_segment_reply"):
        who = "A scene" if schema.startswith("caption") else "Someone acts"
        return {"caption": f"{who} from {start:g}s to {end:g}s."}
    if schema in ("caption_ground_reply", "action_ground_reply"):
        if fault == "disagree":  # far from the captioned segment: temporal IoU 0
            start, end = (0.0, 0.5) if start >= 1.0 else (duration - 0.5, duration)
        if fault == "bad_times":
            start, end = duration + 5, duration + 9
        return {"start_s": start, "end_s": end}
    if schema == "grounding_query_reply":
        quoted = QUOTED.findall(text)  # the caption is the prompt's last quoted text, after its instructions
        caption = quoted[-1] if quoted else "something"
        return {"query": caption if fault == "repeat" else f"the moment {caption.rstrip('.').lower()}"}
    if schema == "ts_qa_changes_reply":
        times = ([duration + 2, duration + 4] if fault == "bad_times"
                 else [round(duration * f, 1) for f in (0.2, 0.5, 0.8)])
        answers = ["One."] * len(times) if fault == "repeat" else ["One.", "Two.", "Three."][:len(times)]
        return {"question": "How many objects are on screen?",
                "answers": [{"time_s": t, "answer": a} for t, a in zip(times, answers, strict=True)]}
    return None


def answer_for(body: dict[str, Any], bad_times: bool = False, at_end: bool = False,
               fault: str | None = None) -> dict[str, Any]:
    """A schema-valid answer derived from the request; ``at_end`` puts a QA span just past the segment's
    end, inside the tolerance a reply is allowed."""
    schema = schema_of(body)
    text, images = _text_of([m for m in body["messages"] if m.get("role") != "assistant"][:2])
    segment = SEGMENT.search(text)
    duration_match = DURATION.search(text)
    duration = float(duration_match.group(1)) if duration_match else 60.0
    start, end = (float(segment.group(1)), float(segment.group(2))) if segment else (0.0, duration)
    staged = stage_answer(schema, text, start, end, duration, "bad_times" if bad_times else fault)
    if staged is not None:
        return staged
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


def benchmark_reply(body: dict[str, Any]) -> str | None:
    """Plain-text questions (no reply schema), as a benchmark run asks them; None for anything else.

    Streaming (the Streamo system prompt, a frame a turn): ``</Standby>`` on the turn carrying the question,
    ``</Response> A`` on any later one. Offline (OVO-Bench's prompts): "A" to a multiple-choice question, "1"
    to a count, "Yes" to a yes/no question."""
    if body.get("response_format", {}).get("type") != "text":
        return None
    messages = body["messages"]
    if messages and messages[0].get("role") == "system" and "</Silence>" in str(messages[0].get("content")):
        last = _text_of([messages[-1]])[0]
        return "</Standby>" if not last.lstrip().startswith("<") else "</Response> A"
    text = _text_of(messages)[0]
    if "Respond only with the letter" in text:
        return "A"
    if "single number" in text:
        return "1"
    if '"Yes" or "No"' in text:
        return "Yes"
    return None


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
        state.bodies.append(body)
        state.received[f"schema:{schema_of(body)}"] += 1
        fault = self._take_fault(schema_of(body))
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
            elif fault and fault.kind == "echo_key":  # a gateway that quotes the Authorization header back
                key = request.headers.get("Authorization", "").removeprefix("Bearer ")
                content = json.dumps(_quoting(answer_for(body), f" (your key is {key})"))
            elif fault and fault.kind == "empty":
                content = ""
            elif (plain := benchmark_reply(body)) is not None:
                content = plain
            else:
                kind = fault.kind if fault else None
                content = json.dumps(answer_for(body, bad_times=kind == "bad_times", at_end=kind == "at_end",
                                                fault=kind))
            return web.json_response(completion(body, content))
        finally:
            state.in_flight -= 1

    def _take_fault(self, schema: str) -> Fault | None:
        """The first queued fault this request may consume (one without a schema, or for its schema)."""
        for fault in self.state.faults:
            if fault.schema is None or fault.schema == schema:
                self.state.faults.remove(fault)
                return fault
        return None

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
