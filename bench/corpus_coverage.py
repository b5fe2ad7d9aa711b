"""What the corpus keeps of its sources: the share of annotations that reach a sample, on files in each
source's published format with the edges real files have.

Usage: python bench/corpus_coverage.py [--videos 2000] [--seed 0]

The real annotation files are licensed and not fetched here, so this writes files in their exact
layouts with the edges that were measured on the real ones (issue 8): ActivityNet Captions whose last
caption ends at the video's duration (24.5% of captions) or a hair past it; QVHighlights windows that
end at the clip's 150 s (13% of queries); Charades-STA sentences whose end exceeds the Charades CSV
length by up to 1.5 s (6% of lines) and that describe one moment several times; COIN step lists
with a step repeated in a row; DiDeMo moments with several descriptions. It then runs each recipe and
the task builders in-process and counts, per rule:

* dense captioning: captions said in a sample (target >= 99%), and what the old rule (drop every event
  ending in the last sampled frame) kept;
* temporal grounding: QVHighlights queries grounded at every window (target >= 99%);
* Charades-STA: lines that become events (target: lose < 1%);
* time-sensitive QA: samples that say one answer twice in a row (target 0);
* offline QA: "what happens after X?" answered by a paraphrase of X (target 0).

Results go to bench/results/corpus_coverage.json and stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

from streamo_data.core.align import State, answer_frame, frame_of, place_span
from streamo_data.core.schema import Event, StreamingSample, VideoRecord
from streamo_data.core.text_keys import normalized
from streamo_data.corpus.tasks import BUILDERS, build_all
from streamo_data.sources.recipes import RECIPES, run_recipe
from streamo_data.sources.sample_sources import sentence
from streamo_data.store.tables import from_row, iter_rows

WORK = Path(__file__).parent / "_work" / "coverage"
RESULTS = Path(__file__).parent / "results"


def tiled(rng: random.Random, duration: float, count: int, to_end: bool) -> list[list[float]]:
    """``count`` captions in order over the video; the last one runs to its end when ``to_end`` (a hair
    past it one time in five, as rounded annotation files do)."""
    cuts = sorted(round(rng.uniform(0, duration), 2) for _ in range(2 * count))
    out = [[cuts[2 * k], cuts[2 * k + 1]] for k in range(count)]
    if to_end:
        out[-1][1] = round(duration + (0.3 if rng.random() < 0.2 else 0.0), 2)
    return out


def write_files(folder: Path, videos: int, rng: random.Random) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    anet = {}
    for i in range(videos):
        duration = round(rng.uniform(20, 240), 2)
        stamps = tiled(rng, duration, rng.randint(2, 6), to_end=rng.random() < 0.9)
        anet[f"v_{i:07d}"] = {"duration": duration, "timestamps": stamps, "sentences": [sentence(rng) for _ in stamps]}
    (folder / "train.json").write_text(json.dumps(anet))

    with (folder / "highlight_train_release.jsonl").open("w") as qvh:
        for i in range(videos):
            windows = sorted({(a, a + 2 * rng.randint(1, 5)) for a in (2 * rng.randint(0, 68) for _ in range(2))})
            windows = [[a, min(150, b)] for a, b in windows]
            if rng.random() < 0.13:
                windows[-1][1] = 150
            qvh.write(json.dumps({"qid": i, "query": sentence(rng), "duration": 150, "vid": f"q{i:06d}_60.0_210.0",
                                  "relevant_windows": windows}) + "\n")

    with (folder / "charades_sta_train.txt").open("w") as sta, (folder / "Charades.csv").open("w") as csv:
        csv.write("id,length\n")
        for i in range(videos):
            video, length = f"C{i:05d}", round(rng.uniform(20, 40), 2)
            csv.write(f"{video},{length}\n")
            for start, end in tiled(rng, length, 3, to_end=False):
                end = length + rng.uniform(0.1, 1.5) if rng.random() < 0.06 else end
                phrase = sentence(rng).lower()
                for variant in range(rng.randint(1, 3)):  # paraphrases: one Charades action, several sentences
                    sta.write(f"{video} {start:.1f} {end:.1f}##{phrase[:-1]} {'again ' * variant}.\n")

    coin = {}
    for i in range(videos):
        duration = round(rng.uniform(60, 240), 2)
        labels = [sentence(rng).lower() for _ in range(3)]
        steps = [rng.choice(labels) for _ in range(6)]  # a step repeated in a row now and then
        coin[f"coin{i:06d}"] = {"duration": duration, "subset": "training", "annotation": [
            {"id": str(k), "segment": s, "label": label}
            for k, (s, label) in enumerate(zip(tiled(rng, duration, 6, to_end=False), steps, strict=True))]}
    (folder / "COIN.json").write_text(json.dumps({"database": coin}))

    didemo, durations = [], {}
    for i in range(videos):
        video = f"{i:08d}@N00_{i}.mp4"
        durations[video] = round(rng.uniform(25, 30), 2)
        for first in sorted(rng.sample(range(6), 3)):
            for _ in range(rng.randint(1, 3)):  # several descriptions of one moment
                didemo.append({"video": video, "times": [[first, first]] * 4, "description": sentence(rng).lower()})
    (folder / "train_data.json").write_text(json.dumps(didemo))
    (folder / "didemo_durations.json").write_text(json.dumps(durations))


def videos_and_events(out: Path) -> Iterator[tuple[VideoRecord, list[Event]]]:
    videos = {r["video_id"]: from_row(VideoRecord, r) for r in iter_rows(out / "videos.parquet")}
    events: dict[str, list[Event]] = {}
    for row in iter_rows(out / "events.parquet"):
        events.setdefault(row["video_id"], []).append(from_row(Event, row))
    for video_id, video in sorted(videos.items()):
        yield video, events.get(video_id, [])


def said_at(sample: StreamingSample, event: Event) -> bool:
    """Whether the sample answers on the frame where ``event``'s span is due (under the last-frame rule)."""
    placed = place_span(event.start_s, event.end_s, sample.num_frames, sample.fps)
    return placed is not None and sample.states[answer_frame(placed, sample.fps)] is State.RESPONSE  # type: ignore[index]


def measure(folder: Path, out: Path) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    recipes = {"activitynet_captions": ("train.json", None), "qvhighlights": ("highlight_train_release.jsonl", None),
               "charades_sta": ("charades_sta_train.txt", "Charades.csv"), "coin": ("COIN.json", None),
               "didemo": ("train_data.json", "didemo_durations.json")}
    reports = {name: run_recipe(RECIPES[name](), folder / file, out / name, videos=folder / videos if videos else None)
               for name, (file, videos) in recipes.items()}

    said = kept_old = total = 0
    for video, events in videos_and_events(out / "activitynet_captions"):
        samples, _ = build_all(BUILDERS["dense_captioning"](), video, events, seed=0)
        answers = " | ".join(r.content for s in samples for r in s.responses)
        total += len(events)
        said += sum(e.text in answers for e in events)
        kept_old += sum(frame_of(e.end_s, video.sample_fps) + 1 < video.num_frames for e in events)  # type: ignore[arg-type,operator]
    results["activitynet dense captioning"] = {"annotations": total, "kept": said / total, "old rule": kept_old / total}

    grounded = kept_old = total = 0
    for video, events in videos_and_events(out / "qvhighlights"):
        samples, _ = build_all(BUILDERS["temporal_grounding"](), video, events, seed=0)
        by_query: dict[str, list[Event]] = {}
        for event in events:
            by_query.setdefault(normalized(event.text), []).append(event)
        for query, windows in by_query.items():
            total += 1
            sample = next((s for s in samples if query in normalized(s.questions[0].content)), None)
            grounded += sample is not None and all(said_at(sample, e) for e in windows)
            kept_old += all(frame_of(e.end_s, video.sample_fps) + 1 < video.num_frames for e in windows)  # type: ignore[arg-type,operator]
    results["qvhighlights grounding (queries)"] = {"annotations": total, "kept": grounded / total,
                                                    "old rule": kept_old / total}

    charades = reports["charades_sta"]
    results["charades-sta lines"] = {"annotations": charades.read, "kept": charades.events / charades.read}

    repeats = tsqa = 0
    for video, events in videos_and_events(out / "coin"):
        for sample in build_all(BUILDERS["time_sensitive_qa"](), video, events, seed=0)[0]:
            tsqa += 1
            said_in_order = [a for a in sample.answers if a]
            repeats += any(a == b for a, b in zip(said_in_order, said_in_order[1:], strict=False))
    results["coin time-sensitive QA (repeat in a row)"] = {"annotations": tsqa, "kept": repeats / max(1, tsqa)}

    paraphrased = pairs = 0
    for source in ("didemo", "charades_sta"):
        for video, events in videos_and_events(out / source):
            moment_of = {normalized(e.text): e.moment for e in events}
            for sample in build_all(BUILDERS["offline_qa"](), video, events, seed=0)[0]:
                question = sample.questions[0].content
                before = next((t for t in moment_of if t and t in normalized(question)), None)
                for response in sample.responses:
                    pairs += 1
                    same = moment_of.get(normalized(response.content)) == moment_of.get(before or "")
                    paraphrased += before is not None and same
    results["offline QA answered by a paraphrase"] = {"annotations": pairs, "kept": paraphrased / max(1, pairs)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)  # recipes merge into a work dir: start from nothing
    folder = WORK / "annotations"
    write_files(folder, args.videos, random.Random(args.seed))
    results = measure(folder, WORK / "work")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "corpus_coverage.json").write_text(json.dumps(results, indent=2))
    print("| rule | items | share | old rule |\n|---|---:|---:|---:|")
    for name, row in results.items():
        old = f"{row['old rule']:.1%}" if "old rule" in row else ""
        print(f"| {name} | {int(row['annotations']):,} | {row['kept']:.1%} | {old} |")


if __name__ == "__main__":
    main()
