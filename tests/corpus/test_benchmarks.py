"""Benchmark files read in their published layouts (synthetic fixtures), and videos keyed by upstream id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamo_data.core.errors import MissingInput, UserError
from streamo_data.core.video_identity import identity_keys
from streamo_data.corpus.benchmarks import BenchmarkVideo, benchmark_keys, read_benchmark

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def by_name(videos: list[BenchmarkVideo]) -> dict[str, list[BenchmarkVideo]]:
    found: dict[str, list[BenchmarkVideo]] = {}
    for video in videos:
        found.setdefault(video.name, []).append(video)
    return found


def test_ovo_bench_tasks_datasets_and_keys() -> None:
    bench = read_benchmark(FIXTURES / "ovo_bench_new.json")
    assert (bench.benchmark, bench.format, bench.path) == ("ovo-bench", "ovo-bench",
                                                          str(FIXTURES / "ovo_bench_new.json"))
    videos = by_name(bench.videos)
    [asi, rec] = videos["COIN/coin0000001.mp4"]  # one video, two tasks: one pair each
    assert (asi.benchmark, asi.task, asi.dataset, asi.keys) == ("ovo-bench", "ASI", "COIN",
                                                                frozenset({"coin0000001"}))
    assert rec.task == "REC"
    [epm] = videos["Ego4D/clips/0a1b2c3d-0000-4000-8000-000000000001.mp4"]  # two questions, one pair
    assert (epm.task, epm.dataset, epm.keys) == ("EPM", "Ego4D", {"0a1b2c3d-0000-4000-8000-000000000001"})
    assert videos["star/CH000004.mp4"][0].keys == {"CH000004"}  # STAR videos are Charades videos
    assert videos["hirest/qvh00000005_60_210.mp4"][0].keys == {"qvh00000005_60_210", "qvh00000005"}
    [game] = videos["YouTube_Games/gameid00012&list=PLsynthetic00000000000000000000000&index=2.mp4"]
    assert (game.task, game.dataset) == ("ACR", "YouTube_Games") and "gameid00012" in game.keys
    assert [(v.task, v.dataset) for v in videos["COIN/coin0000002.mp4"]] == [("SSR", "COIN")]
    assert [(v.task, v.dataset) for v in videos["youcook2/yc0000003.mp4"]] == [("REC", "youcook2")]
    assert len(bench.videos) == 9 and len(bench.names()) == 8
    assert bench.skipped == {"entry without a video path": 1, "entry without a task": 1,
                             "entry that is not an object": 1}
    index = bench.key_index()
    assert [v.task for v in index["coin0000001"]] == ["ASI", "REC"]
    assert "coin0000013" not in index  # its entry has no task: skipped, not guessed


def test_streamingbench_per_question_tasks_and_both_layouts() -> None:
    real = read_benchmark(FIXTURES / "questions_real.json")
    assert (real.benchmark, real.format) == ("streamingbench", "streamingbench")
    assert [(v.task, v.name, v.dataset) for v in real.videos] == [
        ("Clips Summarize", "./videos/sample_1_real.mp4", ""),  # two windows, one pair
        ("Counting", "./videos/sample_1_real.mp4", ""),
        ("Object Recognition", "./videos/sample_2_real.mp4", "")]
    assert set(real.key_index()) == {"sample_1_real", "sample_2_real"}
    assert real.skipped == {"entry without a questions list": 1, "entry without a question with a task_type": 1,
                            "entry without a video_path": 1}
    stream = read_benchmark(FIXTURES / "questions_real_stream.json")
    assert [(v.task, v.name) for v in stream.videos] == [("Object Recognition", "./videos/sample_5_real.mp4")]
    sqa = read_benchmark(FIXTURES / "questions_sqa.json")  # a list of lists, one a video
    assert sqa.format == "streamingbench" and not sqa.skipped
    assert [(v.task, v.name) for v in sqa.videos] == [
        ("Sequential Question Answering", "./videos/sample_17_sqa.mp4"),
        ("Sequential Question Answering", "./videos/sample_18_sqa.mp4")]


def test_et_bench_dataset_is_its_source() -> None:
    bench = read_benchmark(FIXTURES / "etbench_txt_v1.0.json")
    assert (bench.benchmark, bench.format) == ("et-bench", "et-bench")
    assert [(v.task, v.dataset, v.name) for v in bench.videos] == [
        ("tvg", "charades_sta", "charades_sta/CH000008.mp4"), ("dvc", "youcook2", "youcook2/yc0000009.mp4"),
        ("vhd", "qvhighlights", "qvhighlights/qvh00000012_60.0_210.0.mp4"),
        ("rar", "perception_test", "perception_test/video_13.mp4")]
    assert {"CH000008", "yc0000009", "qvh00000012", "video_13"} <= set(bench.key_index())
    assert bench.skipped == {"entry without a video path": 1, "entry without a task": 1}


def test_a_plain_text_list(tmp_path: Path) -> None:
    bench = read_benchmark(FIXTURES / "held_out_videos.txt")
    assert (bench.benchmark, bench.format) == ("held_out_videos", "list")
    assert [(v.benchmark, v.task, v.dataset, v.name) for v in bench.videos] == [
        ("held_out_videos", "", "", "coin0000010"),
        ("held_out_videos", "", "", "/data/videos/didemo/00000011@N00_11.mov"),
        ("held_out_videos", "", "", "v_anet0000016")]
    assert set(bench.key_index()) == {"coin0000010", "00000011@N00_11", "v_anet0000016", "anet0000016"}
    assert bench.skipped == {"line that is not one video id or path": 1}  # the CSV-like row


def test_a_json_list_of_strings(tmp_path: Path) -> None:
    names = tmp_path / "held_out.json"
    names.write_text(json.dumps(["COIN/coin0000010.mp4", "v_anet0000016", 7, ""]))
    bench = read_benchmark(names)
    assert (bench.benchmark, bench.format) == ("held_out", "list")
    assert [(v.name, v.dataset, v.keys) for v in bench.videos] == [
        ("COIN/coin0000010.mp4", "", {"coin0000010"}), ("v_anet0000016", "", {"v_anet0000016", "anet0000016"})]
    assert bench.skipped == {"entry that is not a video id or path": 2}


def test_the_format_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    renamed = tmp_path / "benchmark.txt"
    renamed.write_text((FIXTURES / "etbench_txt_v1.0.json").read_text())
    assert read_benchmark(renamed).format == "et-bench"
    ovo_like = tmp_path / "etbench_txt_v1.0.json"  # task and video only: no ET-Bench source, so OVO-Bench
    ovo_like.write_text(json.dumps([{"task": "EPM", "video": "COIN/coin0000001.mp4"}]))
    assert read_benchmark(ovo_like).format == "ovo-bench"


@pytest.mark.parametrize(("content", "reason"), [
    ('{"videos": ["coin0000010"]}', "JSON holding an object, not a list of entries"),
    ("[]", "an empty list"),
    ('[{"question": "q", "answer": "a"}, {"question": "r"}]', "2 of 2 entries are in no layout"),
    ('[{"task": "EPM", "video": 1}, {"task": "ASI"}]', "read as ovo-bench, but no entry names a video"),
    ("[{", "not valid JSON"),
    ("video,task\nCOIN/a.mp4,ASI\nCOIN/b.mp4,EPM\n", "3 of 3 lines hold several fields"),
    ("# nothing here\n\n", "no video in it"),
])
def test_a_file_in_no_format_is_refused_in_one_line_naming_it(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "suspect_file.json"
    path.write_text(content)
    with pytest.raises(UserError) as refused:
        read_benchmark(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message


def test_the_fixture_in_no_format_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"not_a_benchmark\.json: JSON holding an object"):
        read_benchmark(FIXTURES / "not_a_benchmark.json")
    with pytest.raises(MissingInput, match=r"absent\.json: no such benchmark file"):
        read_benchmark(tmp_path / "absent.json")
    binary = tmp_path / "video.mp4"
    binary.write_bytes(b"\0\0\0\x18ftypmp42")
    with pytest.raises(UserError, match=r"video\.mp4: a binary file"):
        read_benchmark(binary)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("vid\xe9o\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin\.txt: not UTF-8"):
        read_benchmark(latin)


def test_keys_ignore_folders_and_extensions_and_add_a_playlist_file_s_youtube_id() -> None:
    assert benchmark_keys("COIN/-vhwlGY6CGg.mp4") == benchmark_keys("/data/coin/-vhwlGY6CGg.webm") == {"-vhwlGY6CGg"}
    assert benchmark_keys("YouTube_Games/8gtpP2Toigg&list=PLx&index=2.mp4") == {
        "8gtpP2Toigg&list=PLx&index=2", "8gtpP2Toigg"}
    assert benchmark_keys("a&b.mp4") == identity_keys("a&b.mp4") == {"a&b"}  # no query: no id split off
    assert not benchmark_keys("3MSZA") & benchmark_keys("3msza")  # ids keep their case


def test_identity_keys_of_the_names_benchmarks_and_corpora_give() -> None:
    assert identity_keys("v_QOlSCBRmfWY") == {"v_QOlSCBRmfWY", "QOlSCBRmfWY"}  # ActivityNet / HACS
    assert identity_keys("hirest/2YZHJOLuA8o_63_216.mp4") == {"2YZHJOLuA8o_63_216", "2YZHJOLuA8o"}  # a clip
    assert identity_keys("liwei_youtube_videos/ytb_abcdefghijk.mp4") == {"ytb_abcdefghijk", "abcdefghijk"}
    assert identity_keys("") == frozenset() == benchmark_keys("  ")
