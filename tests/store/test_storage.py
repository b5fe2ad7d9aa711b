"""Paths on any filesystem: a local path stays a pathlib.Path; a URL is opened through fsspec, written in
one upload (a failed write leaves the old object, never half a new one), and never carries credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from streamo_data.release.write import ShardWriter
from streamo_data.store.io import write_atomic, write_text_atomic
from streamo_data.store.storage import file_stamp, is_remote, location, move, redacted, relative_name, remove_tree
from streamo_data.store.tables import SAMPLE_FEATURES, read_table
from tests.cluster_parts import s3_server


@pytest.fixture(scope="module")
def bucket() -> Iterator[str]:
    with s3_server(buckets=("storage-test",)) as env, pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield "s3://storage-test"


def test_local_paths_stay_paths_and_urls_become_remote(tmp_path: Path) -> None:
    assert location(str(tmp_path)) == tmp_path and type(location(str(tmp_path))) is type(tmp_path)
    assert location(f"file://{tmp_path}") == tmp_path
    remote = location("s3://bucket/work")
    assert is_remote(remote) and str(remote / "parts") == "s3://bucket/work/parts"
    with pytest.raises(ValueError, match="credentials do not belong in a path"):
        location("s3://AKIA:hunter2@bucket/work")
    assert redacted("s3://AKIA:hunter2@bucket/work") == "s3://***@bucket/work"


def test_a_failed_write_leaves_the_old_object(bucket: str) -> None:
    target = location(f"{bucket}/state.json")
    write_text_atomic(target, '{"done": 1}')

    def half_then_fail(temporary: Path) -> None:
        temporary.write_text('{"do')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, half_then_fail)
    assert target.read_text() == '{"done": 1}'
    stamp = file_stamp(target)
    write_text_atomic(target, '{"done": 2}')
    assert file_stamp(target) != stamp  # a new object has a new ETag, whatever its size
    remove_tree(location(f"{bucket}/state.json"))
    assert not target.exists()


def test_shards_reach_the_store_only_when_finished(bucket: str) -> None:
    out = location(f"{bucket}/release")
    writer = ShardWriter(out, rows_per_shard=2)
    row = {"sample_id": "a" * 16, "task": "narration", "source": "s", "video_id": "v", "video_path": "v.mp4",
           "video_name": "v.mp4", "duration_s": 2.0, "fps": 1.0, "num_frames": 2, "questions": [],
           "responses": [], "states": ["silence", "silence"], "answers": ["", ""]}
    table = pa.Table.from_pylist([row, {**row, "sample_id": "b" * 16}, {**row, "sample_id": "c" * 16}],
                                 schema=SAMPLE_FEATURES.arrow_schema)
    writer.write("narration", "train", table)
    assert not (out / "data").exists()  # staged on this machine, not half-uploaded
    shards = writer.finish()
    assert [s.path for s in shards] == [f"data/narration/train-00000-of-00002-{shards[0].sha256[:16]}.parquet",
                                        f"data/narration/train-00001-of-00002-{shards[1].sha256[:16]}.parquet"]
    assert read_table(out / shards[0].path).num_rows == 2
    found = sorted(relative_name(p, out) for p in (out / "data").rglob("*.parquet"))
    assert found == [s.path for s in shards]


def test_a_local_file_moves_onto_the_store(bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "report.json"
    local.write_text("{}")
    move(local, location(f"{bucket}/moved/report.json"))
    assert not local.exists() and location(f"{bucket}/moved/report.json").read_text() == "{}"
    move(location(f"{bucket}/moved/report.json"), location(f"{bucket}/moved/again.json"))
    assert not location(f"{bucket}/moved/report.json").exists()
    assert location(f"{bucket}/moved/again.json").read_text() == "{}"


@pytest.mark.parametrize("url", ["s3://AKIAEXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY@bucket/rel",
                                 "s3://AKIAEXAMPLE:pl@in/secret@bucket/rel", "s3://AKIAEXAMPLE@bucket/rel",
                                 "gs://id:se/cr/et@bucket"])
def test_credentials_in_a_url_are_refused_and_masked_whatever_they_hold(url: str) -> None:
    with pytest.raises(ValueError, match="credentials do not belong in a path"):
        location(url)
    shown = redacted(url)
    assert "AKIAEXAMPLE" not in shown and "secret" not in shown and "se/cr" not in shown
    assert shown.startswith(url.split("://")[0] + "://***@bucket")


def test_urls_without_credentials_pass(bucket: str) -> None:
    for url in ("s3://bucket/key@with-at/x", "http://127.0.0.1:9000/path@x", "s3://bucket/a:b/c@d"):
        assert redacted(url) == url
        location(url)


def test_a_missing_bucket_is_an_error_and_never_created(bucket: str, tmp_path: Path) -> None:
    import fsspec

    from streamo_data.core.errors import UserError

    with pytest.raises(UserError, match="bucket 'typo-never-made' does not exist"):
        ShardWriter(location("s3://typo-never-made/release"), rows_per_shard=2)
    with pytest.raises(UserError, match="does not exist"):
        write_text_atomic(location("s3://typo-never-made-either/state.json"), "{}")
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    assert not fs.exists("typo-never-made") and not fs.exists("typo-never-made-either")


def test_a_re_release_failing_midway_on_the_store_leaves_the_earlier_release(
        bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The object-store twin of tests/release/test_release_safety.py: the new shards are uploaded beside the old ones,
    and a run that dies before its manifest leaves the earlier release valid."""
    import streamo_data.release.write as release_module
    from streamo_data.core.schema import QuestionTurn, ResponseTurn, StreamingSample
    from streamo_data.release.validate import validate_release
    from streamo_data.release.write import write_release
    from streamo_data.store.manifest import read_manifest
    from streamo_data.store.tables import to_row, write_rows

    samples = [StreamingSample.create(task="temporal_grounding", source="s", video_id=f"v{k}",
                                      video_path=f"v{k}.mp4", duration_s=6.0, fps=1.0, num_frames=6,
                                      questions=[QuestionTurn(content="When does it happen?", time=0)],
                                      responses=[ResponseTurn(content=f"{k + 1}s-3s", st_time=k + 1, end_time=3)])
               for k in range(3)]
    write_rows(tmp_path / "samples.parquet", StreamingSample, [to_row(s) for s in samples])
    out = location(f"{bucket}/rerelease")
    write_release(tmp_path / "samples.parquet", out, rows_per_shard=3, validation_fraction=0)
    before = read_manifest(out)
    monkeypatch.setattr(release_module, "publish", lambda *_: (_ for _ in ()).throw(OSError("store stopped")))
    with pytest.raises(OSError):
        write_release(tmp_path / "samples.parquet", out, rows_per_shard=1, validation_fraction=0)
    assert read_manifest(out) == before and validate_release(out).ok
