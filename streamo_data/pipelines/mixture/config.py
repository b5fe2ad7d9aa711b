"""The mixture config (``pipelines/streamo_instruct.yaml``): its YAML models and how the file is read.

Every later step takes its inputs from here, so whatever is wrong with a config is said once, as one
UserError naming the file, before any work starts: ``${VAR}`` in paths is expanded, relative paths are
taken from the config's folder, and the names the tasks select are checked against the sources declared.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from streamo_data.core.errors import UserError
from streamo_data.core.reasons import validation_messages
from streamo_data.corpus.tasks import check_task_names
from streamo_data.sources.annotators.client import ClientSettings
from streamo_data.sources.recipes import RECIPES
from streamo_data.sources.recipes.run import check_subsets
from streamo_data.stages.annotate_llm import AnnotateOptions
from streamo_data.store.storage import AnyPath, StoragePath, is_url, location, redacted
from streamo_data.store.workdir import INGEST_MANIFEST

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
GENERATED = "llm:"  # the source prefix run_llm_annotation gives its events; the stage renames them


class AnnotatorConfig(BaseModel):
    """One LLM annotator over a source's videos. The YAML writes everything flat beside ``name`` and
    ``kind``: the client settings (model, base_url, api_key_env, concurrency, requests_per_minute,
    tokens_per_minute, prices, ...) go to :class:`ClientSettings`, the rest (prompts, window_s, actors,
    text_model, min_span_iou, ...) to :class:`AnnotateOptions`, which checks the kind against the
    annotate pipeline's registry: a kind it learns is accepted here without a change."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(pattern=NAME)
    options: AnnotateOptions

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, dict) and "options" not in data:
            client = {k: v for k, v in data.items() if k in ClientSettings.model_fields}
            rest = {k: v for k, v in data.items() if k not in client and k != "name"}
            if "cache_dir" in rest:
                raise ValueError("cache_dir is the mixture's (WORK/llm_cache), not an annotator's")
            data = {"name": data.get("name", data.get("kind")), "options": {**rest, "settings": client}}
        return data

    @property
    def kind(self) -> str:
        return self.options.kind

    @property
    def settings(self) -> ClientSettings:
        return self.options.settings

    def with_cache(self, cache_dir: AnyPath) -> AnnotateOptions:
        return self.options.model_copy(update={"cache_dir": cache_dir})

    def stamp(self, prompts: dict[str, Any]) -> dict[str, Any]:
        """What its events depend on: kind, model, endpoint, every stage's prompt, the job settings; not
        the limits, prices, key or actors, which change no reply."""
        options = self.options.model_dump(mode="json", exclude={"settings", "actors", "cache_dir", "prompts"})
        return {**options, "model": self.settings.model, "endpoint": self.settings.endpoint,
                "prompts": {stage: prompt.sha256 for stage, prompt in sorted(prompts.items())}}


class SourceConfig(BaseModel):
    """A recipe over an annotation file, or (no recipe) a folder of videos that is ingested; either may
    name annotators, which need the videos on disk: ``videos`` a folder, or an ingest videos.parquet
    with its ingest.json beside it."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(pattern=NAME)
    recipe: str | None = None
    annotations: StoragePath | None = None
    videos: StoragePath | None = None
    path_template: str = "{key}.mp4"
    # the recipe's official subsets to read (default: its training subsets; ["all"]: every one), and the
    # subset of a file renamed from its published name
    subset: list[str] | None = None
    file_subset: str | None = None
    annotators: list[AnnotatorConfig] = Field(default_factory=list)

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, value: str | None) -> str | None:
        if value is not None and value not in RECIPES:
            raise ValueError(f"unknown recipe {value!r}; known: {', '.join(sorted(RECIPES))}")
        return value

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        if (self.recipe is None) != (self.annotations is None):
            raise ValueError(f"source {self.name}: a recipe and its annotations file go together")
        if self.recipe is None and (self.subset is not None or self.file_subset is not None):
            raise ValueError(f"source {self.name}: subset and file_subset choose what a recipe reads; give a recipe")
        if self.recipe is not None:
            try:
                check_subsets(RECIPES[self.recipe](), self.subset, self.file_subset)
            except UserError as error:
                raise ValueError(f"source {self.name}: {error}") from None
        if self.recipe is None and self.videos is None:
            raise ValueError(f"source {self.name}: give a recipe and annotations, or a videos folder to ingest")
        names = [a.name for a in self.annotators]
        if len(set(names)) != len(names):
            raise ValueError(f"source {self.name}: two annotators share a name (give each a `name:`)")
        return self

    @property
    def has_video_files(self) -> bool:
        """Whether its videos can be looked at (not only their durations known from metadata)."""
        if self.videos is None:
            return False
        if self.videos.is_dir():
            return True
        return self.videos.suffix.lower() == ".parquet" and (self.videos.parent / INGEST_MANIFEST).exists()

    def event_sources(self) -> list[str]:
        """The names a task's ``sources:`` may use for this source's events (``<name>:<annotator>:<type>``
        is checked by its ``<name>:<annotator>``)."""
        return [self.name, *(f"{self.name}:{a.name}" for a in self.annotators)]


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, where: str) -> str:
    """``${VAR}`` and ``${VAR:-default}``; an unset variable without a default is an error naming it
    (left in place, it would surface later as a path that does not exist or a URL that is not one)."""

    def value(match: re.Match[str]) -> str:
        found = os.environ.get(match.group(1))
        if found:
            return found
        if match.group(2) is not None:
            return match.group(2)
        raise ValueError(f"{where} uses ${{{match.group(1)}}}, which is not set")

    # only ``${VAR}``: a bare ``$`` is part of the name (a file called ``$HOME.json`` stays that file)
    return _VAR.sub(value, text)


class TaskQuota(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    quota: int = Field(ge=0)
    sources: list[str] | None = Field(default=None, description=(
        "Only events of these sources (default: all). A source's name takes its recipe's events;"
        " `<source>:<annotator>` takes one annotator's (`<source>:<annotator>:<type>` one QA type)."))


class MixtureConfig(BaseModel):
    """``pipelines/streamo_instruct.yaml``: what goes into the corpus and how much of each task."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = "streamo-instruct"
    seed: int = 0
    fps: float = Field(default=1.0, gt=0)
    validation_fraction: float = Field(default=0.01, ge=0, lt=1)
    rows_per_shard: int = Field(default=50_000, gt=0)
    videos_per_batch: int = Field(default=1000, gt=0)
    sources: list[SourceConfig] = Field(min_length=1)
    tasks: dict[str, TaskQuota]
    # benchmark annotation files (OVO-Bench, StreamingBench, ET-Bench, or a list of video ids): no video they
    # use reaches any split (see streamo_data.pipelines.mixture.decontaminate)
    decontaminate: list[StoragePath] = Field(default_factory=list)

    @field_validator("tasks")
    @classmethod
    def _known_tasks(cls, value: dict[str, TaskQuota]) -> dict[str, TaskQuota]:
        check_task_names(sorted(value))
        return value

    @classmethod
    def load(cls, path: Path) -> MixtureConfig:
        """Read the YAML; ``${VAR}`` in paths is expanded and relative paths are taken from the
        config file's folder, so one config serves any machine that sets the data root. Whatever is wrong
        with it is one UserError naming the file."""
        try:
            return cls._read(path)
        except yaml.YAMLError as error:
            raise UserError(f"{path}: not readable YAML ({' '.join(str(error).split())})") from None
        except ValueError as error:  # the checks below, and pydantic's, each say what and where
            raise UserError(f"{path}: {error}") from None

    @classmethod
    def _read(cls, path: Path) -> MixtureConfig:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a mixture config (a YAML mapping with sources and tasks)")
        # top-level ``x-...`` keys hold YAML anchors (shared endpoint settings), as in docker compose files
        raw = {key: value for key, value in raw.items() if not str(key).startswith("x-")}

        # a path as the config writes it, for error lines: the value of a ``${VAR}`` may be a secret
        as_written: dict[str, str] = {}

        def local(value: str, where: str) -> str:
            text = expand_env(str(value), where)
            if is_url(text):
                try:
                    location(text)
                except ValueError as error:  # said here, before pydantic would quote the URL
                    raise ValueError(f"{where}: {redacted(str(value))}: {error}") from None
                as_written[text] = str(value)
                return text
            expanded = Path(text)
            resolved = str(expanded if expanded.is_absolute() else (path.parent / expanded).resolve())
            as_written[resolved] = str(value)
            return resolved

        for source in raw.get("sources") or []:
            name = source.get("name", "?") if isinstance(source, dict) else "?"
            for key in ("annotations", "videos"):
                if isinstance(source, dict) and source.get(key):
                    source[key] = local(source[key], f"source {name}: {key}")
            for annotator in (source.get("annotators") or []) if isinstance(source, dict) else []:
                if not isinstance(annotator, dict):
                    continue
                where = f"source {name}: annotator {annotator.get('name', annotator.get('kind', '?'))}"
                for key, value in list(annotator.items()):
                    if isinstance(value, str):
                        annotator[key] = expand_env(value, f"{where}: {key}")
                if annotator.get("prompts"):
                    annotator["prompts"] = local(annotator["prompts"], f"{where}: prompts")
        if isinstance(raw.get("decontaminate"), list):
            raw["decontaminate"] = [local(value, "decontaminate") for value in raw["decontaminate"]]
        try:
            config = cls.model_validate(raw)
        except ValidationError as error:  # one line per problem, the field named, never the value
            raise ValueError("; ".join(validation_messages(error))) from None
        for source in config.sources:
            for label, file in (("annotations", source.annotations), ("videos", source.videos)):
                if file is not None and not file.exists():
                    written = as_written.get(str(file), str(file))
                    shown = written if "${" in written else str(file)
                    raise ValueError(f"source {source.name}: {label} {redacted(shown)} does not exist"
                                     + (" (variables as set in the environment)" if shown != str(file) else ""))
            if source.recipe is None and source.videos is not None and not source.videos.is_dir():
                raise ValueError(f"source {source.name}: without a recipe, videos must be a folder to ingest")
        for file in config.decontaminate:
            if not file.exists():
                written = as_written.get(str(file), str(file))
                raise ValueError(f"decontaminate: {redacted(written if '${' in written else str(file))} does not exist")
        names = [s.name for s in config.sources]
        if len(set(names)) != len(names):
            raise ValueError("two sources share a name")
        known = {n for s in config.sources for n in s.event_sources()}
        for task, quota in config.tasks.items():
            missing = sorted(n for n in quota.sources or [] if ":".join(n.split(":")[:2]) not in known)
            if missing:
                raise ValueError(f"task {task} names sources that the config does not declare: {missing}"
                                 " (a source's name, or <source>:<annotator>)")
        return config

    def stamp_fields(self) -> dict[str, Any]:
        """What the plan depends on directly; annotators reach it through their own stamps, so a changed
        rate limit or price does not rebuild the plan."""
        return self.model_dump(mode="json", exclude={"rows_per_shard": True, "sources": {"__all__": {"annotators"}}})

    @property
    def targets(self) -> dict[str, int]:
        return {task: quota.quota for task, quota in self.tasks.items()}
