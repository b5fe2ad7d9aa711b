"""The two ways of asking OVO-Bench's questions, and how each one's answers become OVO-Bench result entries.

**offline** (the benchmark's own, its released ``inference.py``): each multiple-choice question, and each
``test_info`` item of a forward task, is one request about the clip cut at its time (``ceil(realtime)``
seconds): up to ``max_frames`` frames spread evenly over the clip, then OVO-Bench's prompt for the task.
The reply is the entry's ``response`` as it is.

**streaming** (a Streamo-style model, the Streamo repository's ``scripts/benchmark/ovo_script.py``): one
frame per user turn with its time tag, the model's own earlier replies in the conversation; turns before
the question's frame are answered ``</Silence>`` without asking (fast-forward), the question rides on the
user turn of its frame, and the model answers each turn with a state token. Per task:

* multiple choice: asked at ``int(realtime)`` (ASI at a random second up to it, as the script does, drawn
  from the entry's id so a rerun asks the same); the stream stops at the first ``</Response>``, whose text
  is the ``response`` (no response by the video's end: ``None``, scored 0);
* REC: asked at ``max(start_times[0] - 3, 0)`` with the counts as options A..J, streamed to the last test
  time without stopping; a test's ``response`` is the count of the latest ``</Response>`` at or before it;
* CRR: asked at ``ask_time``, stopping at the first ``</Response>``; a test's ``response`` is "Y" once the
  model has responded at or before it (the clue is there), else "N";
* SSR: one stream per step, asked at its start, stopping at the first ``</Response>`` (the step is done);
  a test of that step is "Y" when the model's state at its second is ``</Standby>`` or that
  ``</Response>`` (the step is under way or just done), else "N".

A test's second is ``int(realtime)``, the turn the script would be on.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from streamo_data.benchmarks.ovo.tasks import (
    MULTIPLE_CHOICE,
    offline_prompt,
    stream_choice_question,
    stream_rec_question,
    stream_ssr_question,
)

OFFLINE, STREAMING = "offline", "streaming"
PROTOCOLS = (OFFLINE, STREAMING)
Reply = tuple[int, str, str]  # (frame, state, text after the state token)


@dataclass
class Job:
    """One unit of inference, journaled under ``key`` once answered."""

    key: str
    entry: dict[str, Any]
    until_s: float = 0.0  # offline: the clip's end
    prompt: str = ""  # offline
    questions: dict[int, str] = field(default_factory=dict)  # streaming: frame -> question
    ask_frame: int = 0  # streaming: frames before it are fast-forwarded as silence
    last_frame: int | None = None  # streaming: None streams to the video's end
    stop_on_response: bool = True
    fps: float = 1.0  # streaming: frames a second (OVO-Bench's protocol is 1 fps)


def seconds(value: Any) -> int:
    return int(float(value))


def offline_jobs(entry: dict[str, Any]) -> list[Job]:
    if entry["task"] in MULTIPLE_CHOICE:
        return [Job(str(entry["id"]), entry, float(entry["realtime"]), offline_prompt(entry))]
    return [Job(f"{entry['id']}/{i}", entry, float(test["realtime"]), offline_prompt(entry, i))
            for i, test in enumerate(entry["test_info"])]


def streaming_jobs(entry: dict[str, Any]) -> list[Job]:
    task, key = entry["task"], str(entry["id"])
    if task in MULTIPLE_CHOICE:
        ask = seconds(entry["realtime"])
        if task == "ASI":
            ask = random.Random(f"ovo-bench ASI {entry['id']}").randint(0, ask)
        return [Job(key, entry, questions={ask: stream_choice_question(entry)}, ask_frame=ask)]
    last = max(seconds(test["realtime"]) for test in entry["test_info"])
    if task == "REC":
        ask = max(seconds(entry["start_times"][0]) - 3, 0)
        return [Job(key, entry, questions={ask: stream_rec_question(entry)}, ask_frame=ask,
                    last_frame=last, stop_on_response=False)]
    if task == "CRR":
        ask = seconds(entry["ask_time"])
        return [Job(key, entry, questions={ask: entry["question"]}, ask_frame=ask, last_frame=last)]
    jobs = []  # SSR: a stream per step
    starts = entry.get("start_time") or []
    for index, step in enumerate(entry.get("all_steps") or []):
        tests = [seconds(t["realtime"]) for t in entry["test_info"] if t["step"] == step]
        if tests:
            ask = seconds(starts[index]) if index < len(starts) else 0
            jobs.append(Job(f"{key}/step{index}", entry, questions={ask: stream_ssr_question(step)},
                            ask_frame=ask, last_frame=max(tests)))
    return jobs


def jobs_for(protocol: str, lists: dict[str, list[dict[str, Any]]]) -> list[Job]:
    make = offline_jobs if protocol == OFFLINE else streaming_jobs
    return [job for entries in lists.values() for entry in entries for job in make(entry)]


def rec_count(text: str) -> str:
    """A REC answer as its count: the options A..J stand for 1..10, as the streaming question offers them."""
    match = re.match(r"\s*([A-J])\b", text)
    return str(ord(match.group(1)) - 64) if match else text


def result_entry(protocol: str, entry: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """The entry as OVO-Bench's result file holds it; ``answers`` maps this entry's job keys to what the
    job returned (a reply text offline, a list of replies streaming); a missing key is a failed job."""
    key = str(entry["id"])
    if entry["task"] in MULTIPLE_CHOICE:
        answer = answers.get(key)
        if protocol == STREAMING and answer is not None:  # the first response's text
            answer = next((text for _, state, text in answer if state == "response"), None)
        return {"id": entry["id"], "video": entry["video"], "task": entry["task"], "question": entry["question"],
                "response": answer, "ground_truth": chr(65 + entry["gt"])}
    tests = [dict(test) for test in entry["test_info"]]
    if protocol == OFFLINE:
        for i, test in enumerate(tests):
            test["response"] = answers.get(f"{key}/{i}")
        return {**entry, "test_info": tests}
    if entry["task"] == "SSR":
        steps = {step: index for index, step in enumerate(entry.get("all_steps") or [])}
        for test in tests:
            replies = answers.get(f"{key}/step{steps.get(test['step'], -1)}")
            test["response"] = None if replies is None else ssr_answer(replies, seconds(test["realtime"]))
        return {**entry, "test_info": tests}
    replies = answers.get(key)
    for test in tests:
        at = seconds(test["realtime"])
        if replies is None:
            test["response"] = None
        elif entry["task"] == "REC":
            said = [r for r in replies if r[1] == "response" and r[0] <= at]
            test["response"] = rec_count(said[-1][2]) if said else None
        else:  # CRR
            test["response"] = "Y" if any(r[1] == "response" and r[0] <= at for r in replies) else "N"
    return {**entry, "test_info": tests}


def ssr_answer(replies: list[Reply], at: int) -> str:
    state = next((r[1] for r in replies if r[0] == at), None)
    return "Y" if state in ("standby", "response") else "N"
