"""Prompt templates: the files under ``annotators/`` (front matter + a system and a user message).

Prompts live outside the code so that users edit them without touching Python; their SHA-256 goes
into every event they produce, so a changed prompt is always visible in the provenance.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

PROMPTS_ENV = "STREAMO_PROMPTS"


def prompts_dir() -> Path:
    """``$STREAMO_PROMPTS``, else the project's ``annotators/`` folder."""
    configured = os.environ.get(PROMPTS_ENV)
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "annotators"


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
        text = path.read_text(encoding="utf-8")
        if not text.startswith("---\n"):
            raise ValueError(f"{path}: a prompt starts with YAML front matter between '---' lines")
        _, front, body = text.split("---\n", 2)
        meta = yaml.safe_load(front)
        sections: dict[str, list[str]] = {}
        current = None
        for line in body.splitlines():
            if line.startswith("## "):
                current = line[3:].strip().lower()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
        if set(sections) != {"system", "user"}:
            raise ValueError(f"{path}: needs exactly a '## system' and a '## user' section")
        return cls(name=meta["name"], output=meta["output"], temperature=float(meta.get("temperature", 0.0)),
                   max_tokens=int(meta.get("max_tokens", 512)), frames=int(meta.get("frames", 8)),
                   system="\n".join(sections["system"]).strip(), user="\n".join(sections["user"]).strip(),
                   sha256=hashlib.sha256(text.encode("utf-8")).hexdigest())

    def render(self, **values: object) -> tuple[str, str]:
        return self.system.format(**values), self.user.format(**values)


def load_prompt(name: str, directory: Path | None = None) -> PromptTemplate:
    path = (directory or prompts_dir()) / f"{name}.md"
    if not path.exists():
        raise FileNotFoundError(f"no prompt template {path} (set --prompts or ${PROMPTS_ENV})")
    return PromptTemplate.load(path)
