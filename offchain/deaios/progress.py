"""Rich progress displays for long client work, on stderr so that stdout stays machine-readable.

`activity(description, total=None, counted=False)` is a context manager yielding `update(completed=…,
total=…, description=…)`: a counted activity (or one with a total) draws a bar (count of total, remaining,
elapsed; the total may arrive later through `update`), any other a spinner with the elapsed time — for steps
that report no progress of their own (a DA dispersal waiting for signatures, a deployment).
When stderr is not a terminal (a log file, CI) nothing is drawn and `update` does nothing, so scripts and logs
see only the command's own lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)

Update = Callable[..., None]


@contextlib.contextmanager
def activity(description: str, total: float | None = None, counted: bool = False, file: IO[str] | None = None,
             force: bool = False) -> Iterator[Update]:
    """Show `description` with a bar (when `total` is known) or a spinner until the block ends."""
    console = Console(file=file, stderr=file is None)
    if not (console.is_terminal or force):
        yield lambda **_: None
        return
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if counted or total is not None:
        columns += [BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(description, total=total)

        def update(**fields: Any) -> None:
            bar.update(task, **fields)

        yield update
