"""CPU time of process trees, read from /proc (no dependency: the Locust script imports it too)."""
from __future__ import annotations

import os
from pathlib import Path


def tree_cpu_seconds(roots: set[int]) -> float:
    """User and system CPU seconds so far of the processes ``roots`` and of all their descendants."""
    parents, times, tick = {}, {}, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for pid, seconds in times.items():
        ancestor = pid
        while ancestor > 1 and ancestor not in roots:
            ancestor = parents.get(ancestor, 0)
        total += seconds if ancestor in roots else 0
    return total
