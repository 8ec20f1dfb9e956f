"""What a job did: counts, throughput, per-stage time totals; and its progress line."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field

STAGES = ("decode", "detect", "infer")


@dataclass
class JobSummary:
    """Counts of one run over a destination, and where its time went.

    ``skipped`` inputs already had a record in the destination; ``isolated``
    ones were lost with a batch whose actor died and were scored again one at a
    time (those that killed their actor even alone are among ``failed``).
    ``seconds`` is the run's wall time, starting Ray and the actors included;
    ``stage_seconds`` sums the per-input timings of the records written by
    this run: work done in parallel by all actors, so it can exceed ``seconds``.
    """

    dest: str
    output_format: str
    inputs: int = 0
    skipped: int = 0
    ok: int = 0
    no_face: int = 0
    failed: int = 0
    isolated: int = 0
    actors: int = 0
    seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def processed(self) -> int:
        """Inputs given a record by this run."""
        return self.ok + self.no_face + self.failed

    @property
    def items_per_s(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    def add(self, record: dict) -> None:
        status = record.get("status")
        if status == "ok":
            self.ok += 1
        elif status == "no_face":
            self.no_face += 1
        else:
            self.failed += 1
        for stage, secs in (record.get("timings") or {}).items():
            if isinstance(secs, (int, float)):
                self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + float(secs)

    def to_dict(self) -> dict:
        return {**asdict(self), "processed": self.processed, "items_per_s": self.items_per_s}

    def format(self) -> str:
        lines = [
            (f"{self.inputs} inputs: {self.processed} processed ({self.ok} scored, {self.no_face} without faces, "
             f"{self.failed} errors), {self.skipped} skipped (already in {self.dest})"),
            f"{self.seconds:.1f} s, {self.items_per_s:.2f} items/s on {self.actors} actors"
            + (f"; {self.isolated} re-scored alone after an actor died" if self.isolated else ""),
        ]
        if self.processed and self.stage_seconds:
            stages = [s for s in STAGES if s in self.stage_seconds] + \
                     sorted(s for s in self.stage_seconds if s not in STAGES)
            lines.append("stage totals: " + ", ".join(
                f"{s} {self.stage_seconds[s]:.1f} s ({1000 * self.stage_seconds[s] / self.processed:.0f} ms/item)"
                for s in stages))
        return "\n".join(lines)


class Progress:
    """A tqdm bar with items/s on a terminal; elsewhere (logs, CI) a line every ``log_every`` seconds."""

    def __init__(self, total: int, enabled: bool = True, log_every: float = 10.0) -> None:
        from tqdm import tqdm

        self.total, self.enabled, self.log_every = total, enabled, log_every
        self.done = 0
        self._start = self._last_log = time.monotonic()
        self._bar = tqdm(total=total, unit="item", file=sys.stderr, disable=None if enabled else True,
                         desc="pycrl ray")
        self._log_lines = enabled and self._bar.disable  # tqdm disables itself off a terminal

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        now = time.monotonic()
        if self._log_lines and now - self._last_log >= self.log_every:
            self._last_log = now
            print(f"pycrl ray: {self.done}/{self.total} inputs, {self.done / (now - self._start):.2f} items/s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        self._bar.close()
