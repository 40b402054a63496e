"""Where a command's wall time goes: named stages, timed in the order they run, from the start
of the process (interpreter and imports included) to the last byte written.

A :class:`Stages` is passed down to the functions that do the work (no global clock); each
times its own parts with ``with stages("read"):``. A stage entered twice adds up (the
checkpoints written during training, say). What no stage covers is reported as ``other``,
so the stages sum to the wall time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager


def process_age() -> float:
    """Seconds since this process started (Linux: /proc, 10 ms resolution); 0.0 where the
    start cannot be read, so the clock then starts at the first :class:`Stages`."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start, in ticks since boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - started, 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


class Stages:
    """Seconds per named stage since ``start`` (a time.perf_counter() value; by default the
    process's start, so that the interpreter and the imports before the first stage count)."""

    def __init__(self, start: float | None = None):
        self.start = time.perf_counter() - process_age() if start is None else start
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` towards stage ``name`` (after those already there)."""
        self.seconds[name] = self.seconds.get(name, 0.0) + max(float(seconds), 0.0)

    def since_start(self) -> float:
        return time.perf_counter() - self.start

    def summary(self) -> dict[str, float]:
        """Each stage's seconds, in order, then ``other`` (wall time no stage covers) and
        ``wall`` (since start): the stages and other sum to wall."""
        wall = self.since_start()
        out = {k: round(v, 3) for k, v in self.seconds.items()}
        out["other"] = round(max(wall - sum(self.seconds.values()), 0.0), 3)
        out["wall"] = round(wall, 3)
        return out

    def table(self) -> str:
        """The summary as an aligned text table with each stage's share of the wall time."""
        summary = self.summary()
        wall = max(summary["wall"], 1e-9)
        width = max(len(k) for k in summary)
        rows = [f"{'stage':<{width}}  {'seconds':>8}  {'share':>6}"]
        for name, seconds in summary.items():
            share = "" if name == "wall" else f"{100 * seconds / wall:5.1f}%"
            rows.append(f"{name:<{width}}  {seconds:8.2f}  {share:>6}")
        return "\n".join(rows)


class NoStages(Stages):
    """A :class:`Stages` that records nothing (the default of library calls)."""

    def __init__(self) -> None:
        super().__init__(start=time.perf_counter())

    def add(self, name: str, seconds: float) -> None:
        pass
