"""Which upstream video a name denotes, whatever folder or copy it was found under.

A benchmark and a corpus name the same video differently: OVO-Bench says ``COIN/<youtube id>.mp4``, our
COIN recipe ``<youtube id>``, ActivityNet files ``v_<youtube id>``, HACS saves ``v_<youtube id>.mp4``,
QVHighlights cuts clips ``<youtube id>_<start>_<end>``, LLaVA-Video stores ``ytb_<youtube id>.mp4``. Paths
differ between machines, so a video is identified by the upstream ids its name carries, per source:

========================  ===================================  ==========================================
source                    name as the files give it            identity keys
========================  ===================================  ==========================================
ActivityNet, HACS         ``v_<yt>`` (file ``v_<yt>.mp4``)     ``v_<yt>``, ``<yt>``
COIN, YouCook2, QuerYD    ``<yt>`` (file ``<yt>.mp4``)         ``<yt>``
QVHighlights              ``<yt>_<start>_<end>``               the clip name, and ``<yt>``
Charades(-STA), STAR      ``<charades id>`` (``3MSZA``)        ``3MSZA``
DiDeMo, TACoS, others     file stem                            the stem
LLaVA-Video (YouTube)     ``ytb_<yt>``                         ``ytb_<yt>``, ``<yt>``
========================  ===================================  ==========================================

Two names denote one video when their key sets meet. Keys keep their case (YouTube and Charades ids are
case-sensitive); folder names and extensions never count, so a copy elsewhere is still the same video.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath

# a QVHighlights clip: the YouTube id (11 characters of [A-Za-z0-9_-]) then the clip's start and end
_CLIP = re.compile(r"^(?P<yt>[A-Za-z0-9_-]{11})_\d+(?:\.\d+)?_\d+(?:\.\d+)?$")
_PREFIXES = ("v_", "ytb_")  # ActivityNet and HACS; LLaVA-Video's YouTube downloads
VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".m4v", ".mov", ".qt", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".m2v", ".vob", ".flv", ".f4v",
    ".wmv", ".asf", ".3gp", ".3g2", ".mts", ".m2ts", ".ts", ".ogv", ".mxf", ".dv",
})


@functools.lru_cache(maxsize=1 << 16)  # a recipe looks up every item's video: per video, not per item
def video_stem(name: str) -> str:
    """A video's name without its folders and container extension (or bare trailing dot): what a source
    that names ``x.3gp``, a folder that holds ``x.mp4`` (a re-encode) and a benchmark's ``COIN/x.mp4`` have
    in common. The one stem rule: the recipes' video catalogue matches files by it too."""
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if PurePosixPath(base).suffix.lower() in VIDEO_EXTENSIONS:
        return PurePosixPath(base).stem
    return base.rstrip(".") if base.endswith(".") and base.strip(".") else base


def identity_keys(name: str) -> frozenset[str]:
    """Every upstream id that ``name`` (a path, a file name or an id) carries; empty for an empty name."""
    stem = video_stem(name.strip())
    if not stem:
        return frozenset()
    keys = {stem}
    for prefix in _PREFIXES:
        if stem.startswith(prefix) and len(stem) > len(prefix):
            keys.add(stem[len(prefix):])
    clip = _CLIP.match(stem)
    if clip:
        keys.add(clip.group("yt"))
    return frozenset(keys)
