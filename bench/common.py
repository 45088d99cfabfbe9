"""Helpers shared by the benchmarks in bench/: a process's CPU time read from /proc, and the exit
codes every benchmark ends with."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    """What /proc/<pid>/stat says of a process."""

    comm: str  # the command name
    parent: int
    group: int  # the process group
    cpu_s: float  # user + system CPU seconds
    children_s: float  # CPU seconds of its ended children that it waited for


def proc_stat(pid: str) -> ProcStat | None:
    """The process's /proc/<pid>/stat, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # from the 3rd field, the state, on
    return ProcStat(
        comm=text[text.index("(") + 1 : text.rindex(")")],
        parent=int(fields[1]),
        group=int(fields[2]),
        cpu_s=(int(fields[11]) + int(fields[12])) / CLK_TCK,
        children_s=(int(fields[13]) + int(fields[14])) / CLK_TCK,
    )


def exit_code(run: Callable[[], int], bench_error: type[Exception]) -> int:
    """What `run` returns; 2 (with the reason) when the benchmark could not run, 130 when
    interrupted."""
    try:
        return run()
    except bench_error as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
