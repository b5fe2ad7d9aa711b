"""Bad input to `streamo recipe`: one line naming the item and the reason, exit code 2, no traceback, and
nothing written over earlier work."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from streamo_data.store.io import sha256_of
from tests.cli.bad_inputs.parts import FIXTURES, assert_one_line, invoke


@pytest.mark.parametrize("name", ["activitynet_captions", "charades_sta", "qvhighlights", "youcook2", "coin",
                                  "didemo", "et_instruct", "generic"])
def test_every_recipe_on_an_empty_file(name: str, tmp_path: Path) -> None:
    empty = tmp_path / ("empty.csv" if name == "generic" else "empty.json")
    empty.write_text("", encoding="utf-8")
    assert_one_line(invoke("recipe", name, "--annotations", empty, "--out", tmp_path / "w"), "empty")
    assert not (tmp_path / "w" / "events.parquet").exists()


@pytest.mark.parametrize(("name", "annotations", "videos", "events"), [
    ("charades_sta", "charades_sta_train.txt", "Charades_v1_train.csv", 3),
    ("qvhighlights", "highlight_train_release.jsonl", None, 3),
    ("generic", "events.csv", None, 1),
    ("generic", "events.jsonl", None, 2),
    ("activitynet_captions", "activitynet_train.json", None, 6),
])
def test_a_byte_order_mark_loses_no_record(name: str, annotations: str, videos: str | None, events: int,
                                           tmp_path: Path) -> None:
    marked = tmp_path / annotations
    marked.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / annotations).read_bytes())
    catalogue: list[str | Path] = []
    if videos:
        (tmp_path / videos).write_bytes(b"\xef\xbb\xbf" + (FIXTURES / videos).read_bytes())
        catalogue = ["--videos", tmp_path / videos]
    result = invoke("recipe", name, "--annotations", marked, "--out", tmp_path / "w", *catalogue)
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "w" / "events.parquet").num_rows == events


@pytest.mark.parametrize(("name", "content"), [
    ("charades_sta", '{"qid": 1, "query": "a json line"}\n'),
    ("qvhighlights", "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n"),
    ("generic", "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n"),
])
def test_a_file_of_another_format_is_refused_with_the_reason(name: str, content: str, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(content, encoding="utf-8")
    assert_one_line(invoke("recipe", name, "--annotations", wrong, "--out", tmp_path / "w"), "wrong.txt", name)
    assert not (tmp_path / "w").exists()


def test_recipe_that_writes_no_event_keeps_the_earlier_ones(tmp_path: Path) -> None:
    """Forgetting --videos on a rerun skips every line (no duration): that must not empty the work dir."""
    work = tmp_path / "w"
    args = ["recipe", "charades_sta", "--annotations", FIXTURES / "charades_sta_train.txt", "--out", work]
    assert invoke(*args, "--videos", FIXTURES / "Charades_v1_train.csv").exit_code == 0
    before = sha256_of(work / "events.parquet")
    assert_one_line(invoke(*args), "no duration")
    assert sha256_of(work / "events.parquet") == before


@pytest.mark.parametrize(("catalogue", "content"), [
    ("durations.csv", ""), ("durations.json", "{broken"), ("durations.json", '[{"video": "x"}]'),
    ("videos.parquet", "PAR1 not really"),
])
def test_a_broken_catalogue_names_the_file(catalogue: str, content: str, tmp_path: Path) -> None:
    (tmp_path / catalogue).write_text(content, encoding="utf-8")
    assert_one_line(invoke("recipe", "charades_sta", "--annotations", FIXTURES / "charades_sta_train.txt",
                           "--videos", tmp_path / catalogue, "--out", tmp_path / "w"), catalogue)


def test_recipe_fps_is_checked(tmp_path: Path) -> None:
    assert_one_line(invoke("recipe", "youcook2", "--annotations", FIXTURES / "youcookii_annotations_trainval.json",
                           "--out", tmp_path / "w", "--fps", "0"), "--fps")


def test_annotations_that_are_not_utf8_name_the_file(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("AO8RW 0.0 6.9##une personne ouvre la porte d\xe9j\xe0\n".encode("latin-1"))
    assert_one_line(invoke("recipe", "charades_sta", "--annotations", latin, "--out", tmp_path / "w"),
                    "latin1.txt", "UTF-8")

