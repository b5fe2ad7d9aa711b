"""Bad input, as users give it: every case ends in one line that names the item and the reason, exit code 2,
no traceback, and nothing written over earlier work. Real files throughout (truncated Parquet, BOMs, empty files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import Result
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.io import sha256_of
from streamo_data.pipelines.runner import Executor
from streamo_data.pipelines.stages import SAMPLES, run_annotate_offline, run_build, run_ingest
from streamo_data.release import read_manifest, write_release
from streamo_data.tables import iter_rows
from streamo_data.validate import validate_release
from tests.conftest import write_video

LOCAL = Executor(kind="local")
FIXTURES = Path(__file__).parent / "fixtures" / "recipes"


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_one_line(result: Result, *words: str, code: int = 2) -> None:
    """The project's rule for bad input: one line, the named item and reason in it, exit code 2."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    for word in words:
        assert word in result.output, (word, result.output)


def truncate(path: Path, keep: int = 40) -> None:
    """A Parquet file that lost its footer (an interrupted copy)."""
    path.write_bytes(path.read_bytes()[:keep])


@pytest.fixture(scope="module")
def work_dir(sample_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bad_inputs_work")
    run_ingest(sample_videos, work, 1.0, LOCAL)
    run_annotate_offline(work, LOCAL)
    run_build(work, ["temporal_grounding", "dense_captioning"], 0, LOCAL)
    return work


@pytest.fixture(scope="module")
def release(work_dir: Path) -> Path:
    out = work_dir.parent / "bad_inputs_release"
    write_release(work_dir / SAMPLES, out, validation_fraction=0.3)
    return out


@pytest.fixture()
def work_copy(work_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "work"
    shutil.copytree(work_dir, target)
    return target


@pytest.fixture()
def release_copy(release: Path, tmp_path: Path) -> Path:
    target = tmp_path / "release"
    shutil.copytree(release, target)
    return target


# ---- build: the task list -------------------------------------------------------------------------------

@pytest.mark.parametrize("tasks", [",", "", " , "])
def test_build_refuses_an_empty_task_list_before_writing(work_copy: Path, tasks: str) -> None:
    before = sha256_of(work_copy / SAMPLES)
    result = invoke("build", work_copy, "--tasks", tasks, "--executor", "local")
    assert_one_line(result, "--tasks")
    assert sha256_of(work_copy / SAMPLES) == before


def test_build_refuses_an_unknown_task_in_one_line(work_copy: Path) -> None:
    before = sha256_of(work_copy / SAMPLES)
    assert_one_line(invoke("build", work_copy, "--tasks", "temporal_grounding,juggling", "--executor", "local"),
                    "juggling", "temporal_grounding")
    assert sha256_of(work_copy / SAMPLES) == before


def test_build_on_a_folder_that_is_not_a_work_dir(tmp_path: Path) -> None:
    assert_one_line(invoke("build", tmp_path / "nothing", "--executor", "local"), "videos.parquet")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("name", ["events.parquet", "videos.parquet"])
def test_build_on_a_corrupt_work_file_names_it(work_copy: Path, name: str) -> None:
    truncate(work_copy / name)
    assert_one_line(invoke("build", work_copy, "--executor", "local"), name, "Parquet")


# ---- release: numbers ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "value"), [("--rows-per-shard", "0"), ("--rows-per-shard", "-5"),
                                               ("--validation-fraction", "1.5"), ("--validation-fraction", "-0.1"),
                                               ("--validation-fraction", "nan")])
def test_release_refuses_nonsense_numbers_before_writing(work_dir: Path, tmp_path: Path, option: str,
                                                         value: str) -> None:
    out = tmp_path / "release"
    assert_one_line(invoke("release", work_dir, "--out", out, option, value), option, value)
    assert not out.exists()


def test_release_from_corrupt_samples_names_the_file(work_copy: Path, tmp_path: Path) -> None:
    truncate(work_copy / SAMPLES)
    assert_one_line(invoke("release", work_copy, "--out", tmp_path / "r"), SAMPLES)


# ---- validate / stats / evaluate on the wrong folder or damaged files ------------------------------------

@pytest.mark.parametrize("command", ["validate", "stats"])
def test_a_folder_that_is_not_a_release(command: str, tmp_path: Path) -> None:
    assert_one_line(invoke(command, tmp_path), str(tmp_path), "manifest.json")


def test_a_corrupt_manifest_is_one_line(release_copy: Path) -> None:
    (release_copy / "manifest.json").write_text("{not json", encoding="utf-8")
    for command in ("validate", "stats"):
        assert_one_line(invoke(command, release_copy), "manifest.json")


def test_validate_reports_a_shard_with_a_corrupt_footer_as_a_problem(release_copy: Path) -> None:
    shard = read_manifest(release_copy).shards[0].path
    truncate(release_copy / shard)
    result = invoke("validate", release_copy)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert "not a readable Parquet file" in result.output and shard in result.output


def test_stats_on_a_corrupt_shard_names_it(release_copy: Path) -> None:
    shard = read_manifest(release_copy).shards[0].path
    truncate(release_copy / shard)
    assert_one_line(invoke("stats", release_copy), shard)


def test_validate_reports_parquet_files_the_manifest_does_not_list(release_copy: Path) -> None:
    """`load_dataset` reads every data/<task>/<split>-*.parquet: an unlisted one is part of the data."""
    shard = read_manifest(release_copy).shards[0]
    extra = (release_copy / shard.path).with_name(f"{shard.split}-00099-of-00099.parquet")
    shutil.copy(release_copy / shard.path, extra)
    assert not validate_release(release_copy).ok
    result = invoke("validate", release_copy)
    assert result.exit_code == 1 and extra.relative_to(release_copy).as_posix() in result.output, result.output
    assert "not listed in manifest.json" in result.output


def test_evaluate_on_a_folder_that_is_not_a_run(release: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("evaluate", tmp_path, release), str(tmp_path), "config.yaml")


def test_evaluate_on_a_folder_that_is_not_a_release(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("epochs: 1\n", encoding="utf-8")
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    assert_one_line(invoke("evaluate", run, tmp_path), "manifest.json")


# ---- train: options -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option", [["--epochs", "0"], ["--epochs", "-3"], ["--batch-size", "0"], ["--lr", "0"],
                                    ["--lr", "nan"], ["--gamma", "-1"], ["--loss", "mse"], ["--alpha", "lots"]])
def test_train_refuses_nonsense_options_before_starting(release: Path, sample_videos: Path, tmp_path: Path,
                                                        option: list[str]) -> None:
    out = tmp_path / "run"
    assert_one_line(invoke("train", release, "--out", out, "--video-root", sample_videos, *option),
                    option[0].removeprefix("--").replace("-", "_"))
    assert not out.exists()


def test_train_config_file_with_nonsense(release: Path, sample_videos: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    for text, words in (("[1, 2]\n", ("train.yaml", "mapping")), ("epochs: [\n", ("train.yaml",)),
                        ("heads: 3\nd_model: 32\n", ("d_model", "heads")), ("epochs: ten\n", ("epochs",))):
        config.write_text(text, encoding="utf-8")
        assert_one_line(invoke("train", release, "--out", tmp_path / "run", "--video-root", sample_videos,
                               "--config", config), *words)
    assert not (tmp_path / "run").exists()


def test_train_on_a_folder_that_is_not_a_release(sample_videos: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("train", tmp_path, "--out", tmp_path / "run", "--video-root", sample_videos),
                    "manifest.json")


# ---- ingest: options and the work dir it would replace -------------------------------------------------------

@pytest.mark.parametrize("fps", ["0", "-1", "nan", "inf"])
def test_ingest_refuses_a_nonsense_fps(sample_videos: Path, tmp_path: Path, fps: str) -> None:
    assert_one_line(invoke("ingest", sample_videos, "--out", tmp_path / "w", "--fps", fps, "--executor", "local"),
                    "--fps", fps)
    assert not (tmp_path / "w").exists()


def test_ingest_refuses_an_unknown_backend(sample_videos: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("ingest", sample_videos, "--out", tmp_path / "w", "--backend", "foo", "--executor",
                           "local"), "--backend", "foo")


def test_a_cpu_count_below_one_is_refused(sample_videos: Path, tmp_path: Path) -> None:
    assert_one_line(invoke("ingest", sample_videos, "--out", tmp_path / "w", "--num-cpus", "0"), "--num-cpus")


def test_ingest_from_another_folder_is_refused_unless_replace(work_copy: Path, sample_videos: Path,
                                                              tmp_path: Path) -> None:
    other = tmp_path / "other_videos"
    other.mkdir()
    shutil.copy(next(sample_videos.glob("*.mp4")), other / "clip.mp4")
    before = {name: sha256_of(work_copy / name) for name in ("videos.parquet", "events.parquet", "ingest.json")}
    assert_one_line(invoke("ingest", other, "--out", work_copy, "--executor", "local"), str(sample_videos.resolve()),
                    "--replace")
    assert before == {name: sha256_of(work_copy / name) for name in before}
    result = invoke("ingest", other, "--out", work_copy, "--executor", "local", "--replace")
    assert result.exit_code == 0, result.output
    assert [row["path"] for row in iter_rows(work_copy / "videos.parquet")] == ["clip.mp4"]
    assert "events" in result.output  # it says how many events now name videos it no longer has


def test_ingest_again_from_the_same_folder_is_allowed(work_copy: Path, sample_videos: Path) -> None:
    result = invoke("ingest", sample_videos, "--out", work_copy, "--executor", "local")
    assert result.exit_code == 0, result.output


def test_ingest_over_videos_written_by_a_recipe_is_refused(sample_videos: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    assert invoke("recipe", "youcook2", "--annotations", FIXTURES / "youcookii_annotations_trainval.json",
                  "--out", work).exit_code == 0
    before = sha256_of(work / "videos.parquet")
    assert_one_line(invoke("ingest", sample_videos, "--out", work, "--executor", "local"), "recipe", "--replace")
    assert sha256_of(work / "videos.parquet") == before


# ---- recipes: empty, BOM, wrong format, corrupt catalogue -----------------------------------------------------

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



def test_release_into_a_folder_of_other_files_is_refused(work_dir: Path, tmp_path: Path) -> None:
    """Writing a release removes unlisted Parquet files under data/: never in a folder that is not a release."""
    own = tmp_path / "mine"
    (own / "data" / "x").mkdir(parents=True)
    (own / "data" / "x" / "train-keep.parquet").write_bytes(b"mine")
    (own / "notes.txt").write_text("mine", encoding="utf-8")
    assert_one_line(invoke("release", work_dir, "--out", own), "notes.txt")
    assert (own / "data" / "x" / "train-keep.parquet").read_bytes() == b"mine"
    assert_one_line(invoke("release", work_dir, "--out", own / "notes.txt"), "is a file")
    assert_one_line(invoke("schemas", "--out", own / "notes.txt"), "is a file")


def test_a_release_can_be_rewritten_in_place(release_copy: Path, work_dir: Path) -> None:
    result = invoke("release", work_dir, "--out", release_copy)
    assert result.exit_code == 0 and validate_release(release_copy).ok, result.output


# ---- ingest and build never replace earlier work with nothing ----------------------------------------------

def test_ingest_of_a_folder_without_videos_writes_nothing(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    write_video(videos / "a.mp4", num_frames=30, fps=10)
    work = tmp_path / "work"
    run_ingest(videos, work, 1.0, LOCAL)
    before = sha256_of(work / "videos.parquet")
    (videos / "a.mp4").unlink()
    assert_one_line(invoke("ingest", videos, "--out", work, "--executor", "local"), "no video files found")
    assert sha256_of(work / "videos.parquet") == before


def test_a_video_gone_from_the_folder_stays_as_an_error_row(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    for name in ("a.mp4", "b.mp4"):
        write_video(videos / name, num_frames=30, fps=10)
    work = tmp_path / "work"
    run_ingest(videos, work, 1.0, LOCAL)
    (videos / "b.mp4").unlink()
    run_ingest(videos, work, 1.0, LOCAL)
    rows = {row["path"]: row for row in iter_rows(work / "videos.parquet")}
    assert rows["a.mp4"]["status"] == "ok"
    assert rows["b.mp4"]["status"] == "error" and "no longer in" in rows["b.mp4"]["error"]


def test_a_build_that_makes_no_sample_keeps_the_earlier_samples(work_dir: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    shutil.copytree(work_dir, work)
    before = sha256_of(work / SAMPLES)
    # the offline annotator writes captions only: no qa event for time-sensitive QA to ask about
    result = invoke("build", work, "--tasks", "action_captioning", "--executor", "local")
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]  # after the progress bar
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(errors) == 1 and "no sample built" in errors[0] and "left as it was" in errors[0]
    assert sha256_of(work / SAMPLES) == before


def test_sample_refuses_a_negative_count(tmp_path: Path) -> None:
    assert invoke("sample", tmp_path / "s", "--num-synthetic", "-1").exit_code == 2
    assert not (tmp_path / "s").exists()
