"""The models a benchmark run can ask: an OpenAI-compatible endpoint (through the annotators' client, so
concurrency, rate limits, retries, the reply cache and key redaction are theirs), or a local VLM folder
(a run of ``streamo train --model`` or a Hugging Face Qwen-VL folder, through its streaming inference).

Both answer the two protocols' questions: ``offline(frames, prompt)`` one reply about a clip, and
``stream(frames, job)`` one reply per frame turn as ``(frame, state, text)``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from streamo_data.benchmarks.ovo.protocols import Job, Reply
from streamo_data.core.align import time_tag
from streamo_data.formats.render import REFERENCE_SYSTEM_PROMPT, STATE_TOKENS
from streamo_data.sources.annotators.cache import RequestCache
from streamo_data.sources.annotators.client import ClientSettings, LLMClient, Usage, request_body
from streamo_data.train.vlm.chat import STREAM
from streamo_data.train.vlm.frames import square

OFFLINE_SYSTEM = "You are a helpful assistant."  # Qwen-VL's default, which OVO-Bench's Qwen2-VL runs get
STREAM_WINDOW = 120  # turns kept in an endpoint's conversation, as the reference's OVO-Bench script keeps
TOKENS = {state.value: token for state, token in STATE_TOKENS.items()}


class BenchModel(Protocol):
    name: str
    usage: Usage

    async def offline(self, frames: list[Path], prompt: str) -> str: ...

    async def stream(self, frames: list[Path], job: Job) -> list[Reply]: ...

    async def close(self) -> None: ...


def user_turn(frame: int, job: Job) -> str:
    question = job.questions.get(frame)
    return (f"{question}\n" if question else "") + f"{time_tag(frame, job.fps)}\n"


def parse_reply(text: str) -> tuple[str, str]:
    """A streaming reply's state and the text after its token; a reply with no state token is silence."""
    if TOKENS["response"] in text:
        return "response", text.split(TOKENS["response"], 1)[1].strip()
    return ("standby" if TOKENS["standby"] in text else "silence"), ""


def stream_end(job: Job, frames: int) -> int:
    return frames if job.last_frame is None else min(frames, job.last_frame + 1)


class EndpointModel:
    def __init__(self, client: LLMClient, detail: str = "low", max_tokens: int = 128, temperature: float = 0.0,
                 stream_max_tokens: int = 512) -> None:
        self.client, self.name = client, client.settings.model
        self.detail, self.max_tokens, self.temperature = detail, max_tokens, temperature
        self.stream_max_tokens = stream_max_tokens
        self.usage = client.usage

    @classmethod
    def connect(cls, settings: ClientSettings, work: Path) -> EndpointModel:
        """A model on a client of its own, its replies cached under ``work/cache`` (inside the event loop
        that runs it: the client's connection pools belong to that loop)."""
        return cls(LLMClient(settings, RequestCache(work / "cache")))

    def image(self, path: Path) -> dict[str, Any]:
        url = "data:image/jpeg;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        return {"type": "image_url", "image_url": {"url": url, "detail": self.detail}}

    async def offline(self, frames: list[Path], prompt: str) -> str:
        content = [self.image(path) for path in frames] + [{"type": "text", "text": prompt}]
        body = request_body(self.name, [{"role": "user", "content": content}], self.temperature, self.max_tokens,
                            {"type": "text"})
        return await self.client.complete(body)

    async def stream(self, frames: list[Path], job: Job) -> list[Reply]:
        turns: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        replies: list[Reply] = []
        for frame in range(stream_end(job, len(frames))):
            user = {"role": "user", "content": [{"type": "text", "text": user_turn(frame, job)},
                                                self.image(frames[frame])]}
            if frame < job.ask_frame:
                turns.append((user, {"role": "assistant", "content": TOKENS["silence"]}))
                replies.append((frame, "silence", ""))
                continue
            kept = [*turns[-(STREAM_WINDOW - 1):], (user, None)]
            messages: list[dict[str, Any]] = [{"role": "system", "content": REFERENCE_SYSTEM_PROMPT}]
            if job.ask_frame < frame - STREAM_WINDOW + 1:
                # the question's turn slid out of the window: the first kept turn carries it, as the script does
                first = kept[0][0]
                question = job.questions[job.ask_frame]
                kept[0] = ({"role": "user", "content": [{"type": "text", "text": f"{question}\n"
                                                          + first["content"][0]["text"]}, first["content"][1]]},
                           kept[0][1])
            for u, a in kept:
                messages.append(u)
                if a is not None:
                    messages.append(a)
            body = request_body(self.name, messages, self.temperature, self.stream_max_tokens, {"type": "text"})
            text = await self.client.complete(body)
            state, said = parse_reply(text)
            replies.append((frame, state, said))
            turns.append((user, {"role": "assistant", "content": text}))
            if state == "response" and job.stop_on_response:
                break
        return replies

    async def close(self) -> None:
        await self.client.close()


def read_frames(paths: list[Path], side: int) -> np.ndarray:
    frames = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: not a readable image")
        frames.append(square(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), side))
    return np.stack(frames)


class LocalModel:
    """A VLM folder on this machine; one question at a time (the model holds the cores)."""

    def __init__(self, folder: Path, frame_side: int, max_tokens: int = 128) -> None:
        from streamo_data.train.vlm.loop import load_model, model_dir_of

        self.loaded, self.name = load_model(model_dir_of(folder)), str(folder)
        self.side, self.max_tokens = frame_side, max_tokens
        self.usage = Usage()

    async def offline(self, frames: list[Path], prompt: str) -> str:
        from streamo_data.train.vlm.predict import answer_over_frames

        self.usage.sent += 1
        return answer_over_frames(self.loaded, read_frames(frames, self.side), prompt, OFFLINE_SYSTEM, self.max_tokens)

    async def stream(self, frames: list[Path], job: Job) -> list[Reply]:
        from streamo_data.train.vlm.predict import iter_replies

        end = stream_end(job, len(frames))
        pixels = read_frames(frames[:end], self.side)
        turns = [user_turn(frame, job) + STREAM for frame in range(end)]
        replies: list[Reply] = []
        for reply in iter_replies(self.loaded, pixels, turns, self.max_tokens, silent_until=job.ask_frame):
            self.usage.sent += reply.frame >= job.ask_frame
            replies.append((reply.frame, str(reply.state), reply.text))
            if reply.state == "response" and job.stop_on_response:
                break
        return replies

    async def close(self) -> None:
        return None
