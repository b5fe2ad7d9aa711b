"""Benchmark files read in their published formats, and videos matched to a corpus by upstream id."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamo_data.core.errors import UserError
from streamo_data.core.video_identity import identity_keys, video_stem
from streamo_data.corpus.benchmarks import read_benchmark

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def test_ovo_bench_videos_tasks_and_datasets() -> None:
    bench = read_benchmark(FIXTURES / "ovo_bench_new.json")
    assert (bench.benchmark, bench.format) == ("ovo-bench", "ovo-bench")
    by_name = {video.name: video for video in bench.videos}
    assert by_name["COIN/coin0000001.mp4"].task == "ASI"
    assert by_name["COIN/coin0000001.mp4"].dataset == "COIN"
    assert "coin0000001" in by_name["COIN/coin0000001.mp4"].keys
    assert "CH000004" in by_name["star/CH000004.mp4"].keys  # STAR videos are Charades videos, by id
    assert "qvh00000005" in by_name["hirest/qvh00000005_60.0_210.0.mp4"].keys  # a clip: its YouTube id too
    assert bench.skipped == {"entry without a task and video path": 1}
    assert set(bench.key_index()) >= {"coin0000001", "coin0000002", "yc0000003", "CH000004"}


def test_streamingbench_both_layouts() -> None:
    real = read_benchmark(FIXTURES / "questions_real.json")
    assert real.format == "streamingbench"
    assert {(v.task, video_stem(v.name)) for v in real.videos} == {
        ("Clips Summarize", "v_anet0000007"), ("Object Recognition", "sample_2")}
    assert "anet0000007" in real.key_index()  # ActivityNet's v_ prefix or not, the same video
    assert real.skipped == {"entry without video_path and questions": 1}
    sqa = read_benchmark(FIXTURES / "questions_sqa.json")
    assert [(v.task, video_stem(v.name)) for v in sqa.videos] == [("Sequential Question Answering", "sample_17_sqa")]


def test_et_bench() -> None:
    bench = read_benchmark(FIXTURES / "etbench_txt_v1.0.json")
    assert bench.format == "et-bench"
    assert {(v.task, v.dataset, video_stem(v.name)) for v in bench.videos} == {
        ("tvg", "charades_sta", "CH000008"), ("dvc", "youcook2", "yc0000009")}
    assert bench.skipped == {"entry without a task and video path": 1}


def test_a_plain_list_of_ids_and_paths(tmp_path: Path) -> None:
    bench = read_benchmark(FIXTURES / "held_out_videos.txt")
    assert (bench.benchmark, bench.format) == ("held_out_videos", "list")
    assert {video_stem(v.name) for v in bench.videos} == {"coin0000010", "00000011@N00_11"}
    as_json = tmp_path / "ids.json"
    as_json.write_text('["coin0000010", 7]')
    read = read_benchmark(as_json)
    assert [v.name for v in read.videos] == ["coin0000010"] and sum(read.skipped.values()) == 1


@pytest.mark.parametrize("name", ["not_a_benchmark.json"])
def test_a_file_in_no_format_is_refused_naming_it(name: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=name):
        read_benchmark(FIXTURES / name)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(UserError, match="empty.txt: no video"):
        read_benchmark(empty)
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(UserError, match="broken.json: not valid JSON"):
        read_benchmark(broken)


def test_identity_keys_ignore_folders_and_extensions_but_keep_case() -> None:
    assert identity_keys("COIN/-vhwlGY6CGg.mp4") == identity_keys("/data/coin/-vhwlGY6CGg.webm") == {"-vhwlGY6CGg"}
    assert identity_keys("v_QOlSCBRmfWY") == {"v_QOlSCBRmfWY", "QOlSCBRmfWY"}
    assert identity_keys("2YZHJOLuA8o_63_216") == {"2YZHJOLuA8o_63_216", "2YZHJOLuA8o"}
    assert identity_keys("liwei_youtube_videos/ytb_abcdefghijk.mp4") == {"ytb_abcdefghijk", "abcdefghijk"}
    assert not identity_keys("3MSZA") & identity_keys("3msza")
    assert identity_keys("") == frozenset()
