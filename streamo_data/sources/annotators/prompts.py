"""Prompt templates: front matter + a system and a user message, one file per annotator.

Prompts live outside the code so that users edit them without touching Python; their SHA-256 goes
into every event they produce, so a changed prompt is always visible in the provenance. The shipped
templates are package data (``streamo_data/sources/annotators/templates/``, which the repository's top-level
``annotators/`` links to), so an installed wheel finds them as an editable checkout does; ``--prompts``
or ``$STREAMO_PROMPTS`` points at a folder of edited copies. A template is checked completely when
loaded, so a broken one is one error naming its file before any request is sent.
"""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from streamo_data.core.errors import UserError
from streamo_data.core.reasons import validation_messages
from streamo_data.sources.annotators.replies import REPLIES

PROMPTS_ENV = "STREAMO_PROMPTS"
PLACEHOLDERS = ("start", "end", "duration", "num_frames", "text")  # text: a stage's input (a caption, lines)


class PromptError(UserError):
    """A template that cannot be used; the message names the file and what is wrong with it."""


def prompts_dir() -> Path:
    """``$STREAMO_PROMPTS``, else the templates shipped with the package."""
    configured = os.environ.get(PROMPTS_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parent / "templates"


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    output: str
    temperature: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    max_tokens: int = Field(default=512, ge=1)
    frames: int = Field(default=8, ge=1)

    @field_validator("output")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in REPLIES:
            raise ValueError(f"output {value!r} is not one of {', '.join(REPLIES)}")
        return value


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    output: str
    temperature: float
    max_tokens: int
    frames: int
    system: str
    user: str
    sha256: str

    @classmethod
    def load(cls, path: Path) -> PromptTemplate:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise PromptError(f"{path}: not UTF-8 text") from None
        except OSError as error:
            raise PromptError(f"{path}: cannot read it ({error.strerror})") from None
        try:
            return cls.parse(text)
        except PromptError as error:
            raise PromptError(f"{path}: {error}") from None

    @classmethod
    def parse(cls, text: str) -> PromptTemplate:
        parts = text.split("---\n", 2)
        if len(parts) != 3 or parts[0]:
            raise PromptError("a prompt starts with YAML front matter between two '---' lines")
        _, front, body = parts
        try:
            meta = yaml.safe_load(front)
        except yaml.YAMLError as error:
            raise PromptError(f"the front matter is not valid YAML ({str(error).splitlines()[0]})") from None
        if not isinstance(meta, dict):
            raise PromptError("the front matter must be settings (name: ..., output: ...)")
        try:
            settings = FrontMatter.model_validate(meta)
        except ValidationError as error:
            raise PromptError("; ".join(validation_messages(error))) from None
        sections: dict[str, list[str]] = {}
        current = None
        for line in body.splitlines():
            if line.startswith("## "):
                current = line[3:].strip().lower()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
        if set(sections) != {"system", "user"}:
            raise PromptError("needs exactly a '## system' and a '## user' section")
        template = cls(name=settings.name, output=settings.output, temperature=settings.temperature,
                       max_tokens=settings.max_tokens, frames=settings.frames,
                       system="\n".join(sections["system"]).strip(), user="\n".join(sections["user"]).strip(),
                       sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())
        template.check_placeholders()
        return template

    def check_placeholders(self) -> None:
        """Every ``{...}`` is one the annotators fill in, and literal braces are doubled: found now,
        not as a KeyError in the middle of a run."""
        for section, text in (("system", self.system), ("user", self.user)):
            try:
                fields = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
            except ValueError as error:
                raise PromptError(f"## {section}: {error} (write literal braces as {{{{ and }}}})") from None
            for name in fields:
                if name not in PLACEHOLDERS:
                    raise PromptError(f"## {section}: unknown placeholder {{{name}}} (known:"
                                      f" {', '.join(PLACEHOLDERS)}; write literal braces as {{{{ and }}}})")

    def render(self, **values: object) -> tuple[str, str]:
        return self.system.format(**values), self.user.format(**values)


def load_prompt(name: str, directory: Path | None = None) -> PromptTemplate:
    path = (directory or prompts_dir()) / f"{name}.md"
    if not path.is_file():
        raise PromptError(f"no prompt template {path} (set --prompts or ${PROMPTS_ENV})")
    return PromptTemplate.load(path)
