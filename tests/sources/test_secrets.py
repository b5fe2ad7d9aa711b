"""Secrets never reach a file or a log line: an endpoint that quotes the API key back in a reply, a base URL
carrying a password, and a config whose ``${VAR}`` holds a secret (storage URLs: tests/test_storage.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamo_data.pipelines.mixture import MixtureConfig, expand_env
from streamo_data.runtime.runner import Executor
from streamo_data.sources.annotators.client import ClientSettings
from streamo_data.stages.annotate_llm import AnnotateOptions, run_llm_annotation
from tests.conftest import annotated_work_dir
from tests.llm_stub import StubServer

KEY_ENV = "STREAMO_TEST_SECRET_KEY"
KEY = "sk-secret-echoed-0123456789"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return annotated_work_dir(tmp_path_factory.mktemp("secrets"), seed=61)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def files_holding(folder: Path, secret: str) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
            and secret.encode() in p.read_bytes()]


def test_a_reply_quoting_the_api_key_is_refused_and_written_nowhere(work: Path, stub: StubServer) -> None:
    stub.inject("echo_key", count=100)
    settings = ClientSettings(model="stub-vl", base_url=stub.base_url, api_key_env=KEY_ENV, timeout_s=5.0,
                              backoff_base_s=0.01, backoff_max_s=0.02, concurrency=2)
    report = run_llm_annotation(work, AnnotateOptions(kind="caption", window_s=10.0, actors=1, settings=settings),
                                Executor(kind="local"))
    assert stub.state.received["chat"] > 0 and report.events == 0
    assert any("quotes the API key" in reason for reason in report.rejects), report.rejects
    assert files_holding(work, KEY) == []
    assert stub.state.received["chat"] == report.usage.failed  # refused at once, never asked again


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamo_data.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, KEY_ENV: KEY}, cwd=REPO)


@pytest.mark.parametrize("url", ["http://admin:PASSW0RDSECRET@127.0.0.1:9/v1", "http://PASSW0RDSECRET@127.0.0.1:9/v1",
                                 "https://admin:PASS/W0RDSECRET@example.com/v1"])
def test_a_base_url_with_credentials_is_refused_without_printing_them(work: Path, url: str) -> None:
    result = run_cli("annotate", "caption", str(work), "--model", "m", "--base-url", url, "--api-key-env", KEY_ENV,
                     "--executor", "local")
    output = result.stdout + result.stderr
    assert result.returncode == 2 and "Traceback" not in output, output
    assert "credentials do not belong in the URL" in output and "--base-url" in output
    assert "PASSW0RD" not in output and "W0RDSECRET" not in output
    assert files_holding(work, "PASSW0RD") == []
    with pytest.raises(ValueError, match="credentials"):
        ClientSettings(model="m", base_url=url)


def test_a_config_variable_is_never_printed_in_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMO_TEST_TOKEN", "sk-TOPSECRET-123")
    config = tmp_path / "c.yaml"
    config.write_text("name: t\nsources:\n  - name: a\n    recipe: activitynet_captions\n"
                      '    annotations: "${STREAMO_TEST_TOKEN}/train.json"\ntasks:\n  dense_captioning: {quota: 4}\n')
    with pytest.raises(ValueError) as raised:
        MixtureConfig.load(config)
    assert "TOPSECRET" not in str(raised.value) and "${STREAMO_TEST_TOKEN}/train.json" in str(raised.value)
    result = run_cli("build", str(tmp_path / "w"), "--config", str(config), "--out", str(tmp_path / "r"),
                     "--executor", "local")
    assert result.returncode == 2 and "TOPSECRET" not in result.stdout + result.stderr


def test_only_braced_variables_are_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMO_TEST_ROOT", "/data")
    assert expand_env("${STREAMO_TEST_ROOT}/a.json", "x") == "/data/a.json"
    assert expand_env("recipes/$HOME.json", "x") == "recipes/$HOME.json"
    assert expand_env("$STREAMO_TEST_ROOT/a.json", "x") == "$STREAMO_TEST_ROOT/a.json"
