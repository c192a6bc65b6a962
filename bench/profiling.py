"""py-spy on a running process, and the top costs out of its collapsed stacks.

`record()` samples every thread of the process (idle frames left out) into the "raw"
(collapsed) format: one line per distinct stack, `frame;frame;… count`. `summarize()`
ranks functions by own time (the innermost frame) and by inclusive time (anywhere on
the stack), both as a share of all samples.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

from stack import BIN

TOP = 25
_PATH = re.compile(r"\((?P<path>[^()]*)\)$")
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def record(pid: int, seconds: float, output: Path, rate: int = 200) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--rate", str(rate), "--format", "raw", "--output", str(output), "--nonblocking"]
    with output.with_suffix(".log").open("wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


def _short(frame: str) -> str:
    """`function (path/to/module.py:12)` → `function (module/path tail)`, without the line."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})"


def summarize(collapsed: Path, top: int = TOP) -> dict[str, object]:
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    if not collapsed.exists():
        log = collapsed.with_suffix(".log")
        said = log.read_text().strip()[-300:] if log.exists() else ""
        return {"profile": f"py-spy wrote nothing: {said or '(no output)'}"}
    for line in collapsed.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack_text.split(";")]
        total += count
        own[frames[-1]] += count
        packages[_package(frames)] += count
        for frame in set(frames):
            inclusive[frame] += count

    def share(counter: Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "own_by_package": share(packages),
        "own": share(own),
        "inclusive": share(inclusive),
    }


def _package(frames: list[str]) -> str:
    """Where the innermost frame's code lives: `gateway.adapters`, `sqlalchemy`, `asyncpg`…"""
    match = _PATH.search(frames[-1])
    if match is None:
        return "(native or unknown)"
    parts = match["path"].split("/")
    if parts[0] == "gateway" and len(parts) > 2:
        return ".".join(parts[:2])
    return parts[0].removesuffix(".py") if len(parts) > 1 else "(stdlib) " + parts[0]
