"""OVO-Bench annotations in its published layout (every task type), over short generated videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import write_video

OPTIONS = ["a red cup", "a blue cup", "a green cup", "no cup"]


def choice(entry_id: int, task: str, video: str, realtime: float, gt: int) -> dict[str, Any]:
    return {"id": entry_id, "task": task, "video": video, "realtime": realtime,
            "question": f"What is on the table ({task})?", "answer": OPTIONS[gt], "options": OPTIONS, "gt": gt}


def annotations() -> list[dict[str, Any]]:
    """12 s videos; every one of the twelve tasks, with ground truths A and not A mixed."""
    entries = [choice(0, "EPM", "Ego4D/clips/a.mp4", 6, 0), choice(1, "EPM", "Ego4D/clips/a.mp4", 9.5, 2),
               choice(2, "ASI", "COIN/b.mp4", 7, 0), choice(3, "HLD", "Ego4D/clips/a.mp4", 5, 3),
               choice(4, "STU", "YouTube_Games/c.mp4", 4, 0), choice(5, "OJR", "YouTube_Games/c.mp4", 4, 1),
               choice(6, "ATR", "YouTube_Games/c.mp4", 8, 0), choice(7, "ACR", "Ego4D/video/d.mp4", 3.2, 0),
               choice(8, "OCR", "AutoEvalMetaData/106.mp4", 5.4, 1), choice(9, "FPD", "Ego4D/video/d.mp4", 8.43, 0)]
    entries.append({"id": 10, "task": "CRR", "video": "MovieNet/tt1.mp4", "question": "What does she do with the car?",
                    "answer": "She walks past it.", "ask_time": 2, "clue_time": 6,
                    "test_info": [{"realtime": 2, "type": 0}, {"realtime": 4, "type": 0},
                                  {"realtime": 7, "type": 1}, {"realtime": 10, "type": 1}]})
    entries.append({"id": 11, "task": "SSR", "video": "COIN/b.mp4", "tutorial": "ChangeTire",
                    "all_steps": ["loosen the nuts", "lift the car"], "start_time": [1, 6], "end_time": [4, 9],
                    "test_info": [{"realtime": 2, "step": "loosen the nuts", "type": 1},
                                  {"realtime": 5, "step": "loosen the nuts", "type": 0},
                                  {"realtime": 5, "step": "lift the car", "type": 0},
                                  {"realtime": 7, "step": "lift the car", "type": 1}]})
    entries.append({"id": 12, "task": "REC", "video": "perception_test/video_1.mp4", "activity": "clapping",
                    "start_times": [3, 7], "end_times": [4, 8],
                    "test_info": [{"realtime": 4, "count": 1}, {"realtime": 8, "count": 2},
                                  {"realtime": 11.0, "count": 2}]})
    return entries


def write_benchmark(root: Path) -> tuple[Path, Path]:
    """(annotation file, video root) with every video the entries name, 12 s at 5 fps."""
    videos = root / "videos"
    entries = annotations()
    for video in {entry["video"] for entry in entries}:
        write_video(videos / video, 60, 5.0)
    path = root / "ovo_bench_new.json"
    path.write_text(json.dumps(entries, indent=1))
    return path, videos
