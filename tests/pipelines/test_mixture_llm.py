"""LLM annotators as a stage of the mixture build, against the loopback stub server (tests/llm_stub.py):
their events reach the release under ``<source>:<annotator>``, a rerun sends nothing, a changed model
runs again, ``--dry-run`` sends nothing and reports the bill, and a source without videos is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from streamo_data.cli import app
from streamo_data.core.errors import UserError
from streamo_data.pipelines.mixture import (
    MixtureConfig,
    dry_run,
    expand_env,
    lacking_videos,
    run_mixture,
    selected_by,
)
from streamo_data.runtime.runner import Executor
from streamo_data.store.manifest import read_manifest
from streamo_data.store.tables import iter_rows
from tests.conftest import write_video
from tests.llm_stub import StubServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CONFIG = FIXTURES / "mixture_llm.yaml"
LOCAL = Executor(kind="local")
# clips: 3 videos x (narration + qa); captions: 2 videos x 2 recipe spans
REQUESTS = 3 + 3 + 4


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("llm_mixture_videos")
    for name, seconds in (("clip_a", 12), ("clip_b", 16), ("clip_c", 10)):
        write_video(folder / f"{name}.mp4", num_frames=seconds * 5, fps=5)
    return folder


@pytest.fixture()
def env(videos: Path, stub: StubServer, monkeypatch: pytest.MonkeyPatch) -> StubServer:
    monkeypatch.setenv("STREAMO_TEST_VIDEOS", str(videos))
    monkeypatch.setenv("STREAMO_TEST_LLM_URL", stub.base_url)
    monkeypatch.setenv("STREAMO_TEST_LLM_KEY", "sk-test-mixture")
    return stub


def variant(tmp_path: Path, change: object) -> Path:
    """The fixture config with ``change(raw)`` applied, written beside the fixtures' paths made absolute."""
    raw = yaml.safe_load(CONFIG.read_text())
    for source in raw["sources"]:
        if source.get("annotations"):
            source["annotations"] = str(FIXTURES / source["annotations"])
    change(raw)  # type: ignore[operator]
    path = tmp_path / "mixture.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def release_rows(release: Path) -> list[dict]:
    return [row for shard in read_manifest(release).shards for row in iter_rows(release / shard.path)]


def events(work: Path, source: str) -> list[dict]:
    return list(iter_rows(work / "sources" / source / "events.parquet"))


def test_build_runs_the_annotators_and_their_events_reach_the_release(env: StubServer, tmp_path: Path) -> None:
    import ray

    config = MixtureConfig.load(CONFIG)
    try:
        result = run_mixture(config, tmp_path / "work", tmp_path / "release", Executor(kind="ray", num_cpus=2))
    finally:
        ray.shutdown()
    assert env.state.received["chat"] == REQUESTS
    clips = {e["source"] for e in events(tmp_path / "work", "clips")}
    assert clips == {"clips:narration", "clips:qa:time_sensitive", "clips:qa:offline"}
    captions = [e for e in events(tmp_path / "work", "captions") if e["source"] == "captions:caption"]
    assert len(captions) == 4 and all(json.loads(e["provenance"])["model"] == "stub-vl" for e in captions)
    assert result.annotators["captions:caption"]["usage"]["sent"] == 4

    by_task: dict[str, set[str]] = {}
    for row in release_rows(tmp_path / "release"):
        by_task.setdefault(row["task"], set()).add(row["source"])
    assert by_task["narration"] == {"clips:narration"}
    assert by_task["dense_captioning"] == {"captions:caption"}
    assert by_task["time_sensitive_qa"] <= {"clips:qa:time_sensitive", "clips:qa:offline"}
    assert by_task["time_sensitive_qa"]


def test_a_rerun_sends_nothing_and_a_lost_stamp_is_served_from_the_cache(env: StubServer, tmp_path: Path) -> None:
    config = MixtureConfig.load(CONFIG)
    work = tmp_path / "work"
    run_mixture(config, work, tmp_path / "r1", LOCAL)
    first = release_rows(tmp_path / "r1")
    assert env.state.received["chat"] == REQUESTS

    again = run_mixture(config, work, tmp_path / "r2", LOCAL)
    assert env.state.received["chat"] == REQUESTS  # nothing sent
    assert again.resumed_batches == len(list((work / "parts").glob("*.parquet")))  # the plan is unchanged
    assert release_rows(tmp_path / "r2") == first

    # as after a crash between the annotator's run and its stamp: it runs again, every reply from the cache
    for state in (work / "sources").glob("*/annotators/*/state.json"):
        state.unlink()
    third = run_mixture(config, work, tmp_path / "r3", LOCAL)
    assert env.state.received["chat"] == REQUESTS
    assert sum(r["usage"]["cached"] for r in third.annotators.values()) == REQUESTS
    assert release_rows(tmp_path / "r3") == first  # the same events, not duplicated


def test_a_changed_model_runs_that_annotator_again_and_drops_its_old_events(env: StubServer, tmp_path: Path) -> None:
    run_mixture(MixtureConfig.load(CONFIG), tmp_path / "work", tmp_path / "r1", LOCAL)

    def other_model(raw: dict) -> None:
        raw["sources"][0]["annotators"][0]["model"] = "stub-vl-2"

    changed = run_mixture(MixtureConfig.load(variant(tmp_path, other_model)), tmp_path / "work", tmp_path / "r2",
                          LOCAL)
    assert env.state.received["chat"] == REQUESTS + 3  # the 3 narration requests, nothing else
    narration = [e for e in events(tmp_path / "work", "clips") if e["source"] == "clips:narration"]
    assert narration and {json.loads(e["provenance"])["model"] for e in narration} == {"stub-vl-2"}
    assert changed.resumed_batches == 0  # the plan follows the annotator's events


def test_removing_an_annotator_removes_its_events(env: StubServer, tmp_path: Path) -> None:
    run_mixture(MixtureConfig.load(CONFIG), tmp_path / "work", tmp_path / "r1", LOCAL)

    def without_qa(raw: dict) -> None:
        raw["sources"][0]["annotators"] = raw["sources"][0]["annotators"][:1]
        raw["tasks"]["time_sensitive_qa"]["sources"] = ["clips"]

    run_mixture(MixtureConfig.load(variant(tmp_path, without_qa)), tmp_path / "work", tmp_path / "r2", LOCAL)
    assert {e["source"] for e in events(tmp_path / "work", "clips")} == {"clips:narration"}
    assert not (tmp_path / "work" / "sources" / "clips" / "annotators" / "qa").exists()


def test_dry_run_sends_nothing_writes_no_release_and_names_sources_without_videos(
        env: StubServer, tmp_path: Path) -> None:
    def annotate_highlights(raw: dict) -> None:
        raw["sources"][2]["annotators"] = [{**raw["sources"][1]["annotators"][0], "name": "caption"}]

    config = variant(tmp_path, annotate_highlights)
    work, release = tmp_path / "work", tmp_path / "release"
    result = CliRunner().invoke(app, ["build", str(work), "--config", str(config), "--out", str(release),
                                      "--dry-run", "--executor", "local"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert env.state.received["chat"] == 0 and not release.exists()
    total = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("total"))
    assert str(REQUESTS) in total.split()
    assert "no videos to annotate (metadata only): highlights" in result.output

    refused = CliRunner().invoke(app, ["build", str(work), "--config", str(config), "--out", str(release),
                                       "--executor", "local"], env={"COLUMNS": "200"})
    assert refused.exit_code == 2 and "highlights" in refused.output and "Traceback" not in refused.output
    assert env.state.received["chat"] == 0 and not release.exists()


def test_dry_run_after_a_build_says_nothing_is_left_to_send(env: StubServer, tmp_path: Path) -> None:
    config = MixtureConfig.load(CONFIG)
    rows = dry_run(config, tmp_path / "work", LOCAL)
    planned = {(r.source, r.stage.split()[1]): r.requests for r in rows if r.stage.startswith("annotate")}
    assert planned == {("clips", "narration"): 3, ("clips", "qa"): 3, ("captions", "caption"): 4}
    assert all(r.tokens > 0 and r.cost > 0 for r in rows if r.requests)
    run_mixture(config, tmp_path / "work", tmp_path / "release", LOCAL)
    sent = env.state.received["chat"]
    after = dry_run(config, tmp_path / "work", LOCAL)
    assert sum(r.requests for r in after) == 0 and env.state.received["chat"] == sent


def test_config_errors_name_the_problem(env: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMO_TEST_LLM_URL")
    with pytest.raises(ValueError, match=r"annotator narration: base_url uses \$\{STREAMO_TEST_LLM_URL\}, which is"
                                         " not set"):
        MixtureConfig.load(CONFIG)
    monkeypatch.setenv("STREAMO_TEST_LLM_URL", env.base_url)

    def unknown_annotator(raw: dict) -> None:
        raw["tasks"]["narration"]["sources"] = ["clips:subtitles"]

    with pytest.raises(ValueError, match=r"declare: \['clips:subtitles'\]"):
        MixtureConfig.load(variant(tmp_path, unknown_annotator))

    def unknown_kind(raw: dict) -> None:
        raw["sources"][0]["annotators"][0]["kind"] = "poetry"

    with pytest.raises(ValueError, match="kind"):
        MixtureConfig.load(variant(tmp_path, unknown_kind))


def test_a_missing_api_key_is_one_error_before_anything_is_sent(
        env: StubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMO_TEST_LLM_KEY")
    with pytest.raises(UserError, match="annotator clips:narration: .*STREAMO_TEST_LLM_KEY"):
        run_mixture(MixtureConfig.load(CONFIG), tmp_path / "work", tmp_path / "release", LOCAL)
    assert env.state.received["chat"] == 0 and not (tmp_path / "release").exists()


def test_a_source_name_selects_its_recipe_and_source_colon_annotator_one_annotator() -> None:
    assert selected_by("koala", {"koala"}) and not selected_by("koala:narration", {"koala"})
    assert selected_by("koala:narration", {"koala:narration"})
    assert selected_by("koala:qa:offline", {"koala:qa"}) and selected_by("koala:qa:offline", {"koala:qa:offline"})
    assert not selected_by("koala:qa:temporal", {"koala:qa:offline"}) and not selected_by("koala:narration",
                                                                                          {"koala:qa"})
    assert not selected_by("koalas", {"koala"}) and not selected_by("llm:caption", {"koala"})


PAPER = Path(__file__).resolve().parents[2] / "pipelines" / "streamo_instruct.yaml"


def test_the_paper_config_has_its_task_shares_and_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = yaml.safe_load(PAPER.read_text())
    quotas = {task: entry["quota"] for task, entry in raw["tasks"].items()}
    assert sum(quotas.values()) == 465_000
    assert {task: round(100 * q / 465_000, 1) for task, q in quotas.items()} == {
        "time_sensitive_qa": 34.8, "temporal_grounding": 26.3, "offline_qa": 13.8, "narration": 12.7,
        "dense_captioning": 6.7, "action_captioning": 5.8}

    for name, value in {"STREAMO_DATA": tmp_path / "data", "STREAMO_VIDEOS": tmp_path / "videos",
                        "STREAMO_LLM_BASE_URL": "http://127.0.0.1:9/v1", "STREAMO_VLM_MODEL": "vlm",
                        "STREAMO_TEXT_MODEL": "llm"}.items():
        monkeypatch.setenv(name, str(value))
    for source in raw["sources"]:  # every file and folder it names, present (empty), so that it loads
        for key in ("annotations", "videos"):
            if key in source:
                path = Path(expand_env(source[key], key))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch() if path.suffix else path.mkdir(exist_ok=True)
    config = MixtureConfig.load(PAPER)
    assert not lacking_videos(config)
    generated = {f"{s.name}:{a.name}": a.kind for s in config.sources for a in s.annotators}
    assert {generated[n] for n in config.tasks["narration"].sources or []} == {"narration_pipeline"}
    assert {generated[n] for n in config.tasks["time_sensitive_qa"].sources or []} == {"ts_qa_changes"}
    assert {generated[n] for n in config.tasks["dense_captioning"].sources or []} == {"caption_verified"}
    assert {generated[n] for n in config.tasks["action_captioning"].sources or []} == {"action_verified"}
    assert all(a.settings.base_url == "http://127.0.0.1:9/v1" and a.settings.concurrency == 32
               for s in config.sources for a in s.annotators)


def test_annotators_with_the_work_dir_on_object_storage(env: StubServer, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The LLM stage with WORK on S3 (its cache, events, state and reports as objects), videos on a mounted
    folder: the release a local work dir gives, and a rerun that sends nothing."""
    from tests.cluster_parts import s3_server

    config = MixtureConfig.load(CONFIG)
    run_mixture(config, tmp_path / "work", tmp_path / "local", LOCAL)
    expected = release_rows(tmp_path / "local")
    sent = env.state.received["chat"]
    with s3_server(buckets=("streamo-llm",)) as s3:
        for key, value in s3.items():
            monkeypatch.setenv(key, value)
        from streamo_data.store.storage import location

        work, release = location("s3://streamo-llm/work"), location("s3://streamo-llm/release")
        run_mixture(config, work, release, LOCAL)
        assert env.state.received["chat"] == sent + REQUESTS  # its own cache, on S3, starts empty
        assert release_rows(release) == expected
        assert (work / "llm_cache").is_dir() and list((work / "sources").glob("*/annotators/*/state.json"))
        before = env.state.received["chat"]
        again = run_mixture(config, work, release, LOCAL)
        assert env.state.received["chat"] == before and again.resumed_batches > 0
        assert release_rows(release) == expected
