"""Progress display: a tqdm bar on a terminal, plain periodic lines anywhere else.

Redirected to a file (SLURM, CI, ``> log``), tqdm's redrawing leaves carriage returns, cursor-up codes
from nested bars and blank lines; there a :class:`PlainProgress` writes one line when the work starts,
one every ``LATENT_SKILLS_PROGRESS_INTERVAL`` seconds (default 30) and one when it ends.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

DEFAULT_INTERVAL_S = 30.0


def on_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default stderr, where progress goes) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def _interval() -> float:
    raw = os.environ.get("LATENT_SKILLS_PROGRESS_INTERVAL", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_INTERVAL_S
    except ValueError:
        return DEFAULT_INTERVAL_S


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class PlainProgress:
    """The part of tqdm's interface the library uses, written as whole lines to stderr."""

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        initial: int = 0,
        interval: float | None = None,
        file: TextIO | None = None,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.n = self.start_n = initial
        self.interval = _interval() if interval is None else interval
        self.file = file
        self.postfix = ""
        self.closed = False
        self.started = self.last = time.monotonic()
        self._write("started")

    def _write(self, state: str | None = None) -> None:
        elapsed = time.monotonic() - self.started
        done = f"{self.n:,}" if self.total is None else f"{self.n:,}/{self.total:,}"
        parts = [f"{self.desc}: {done} {self.unit}"]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        if state is not None:
            parts.append(state)
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        if state != "started":
            parts.append(f"{_duration(elapsed)}, {rate:.3g} {self.unit}/s")
            if state is None and self.total and rate > 0:
                parts.append(f"~{_duration((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(self.postfix)
        print(", ".join(parts), file=self.file or sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._write()

    def set_postfix(self, values: dict[str, Any] | None = None, **kwargs: Any) -> None:
        items = {**(values or {}), **kwargs}
        self.postfix = " ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._write("done" if self.total is None or self.n >= self.total else "stopped")

    def __iter__(self) -> Iterator[Any]:
        assert self.iterable is not None, "PlainProgress was made without an iterable"
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
    initial: int = 0,
    disable: bool = False,
) -> Any:
    """A tqdm bar on a terminal, a :class:`PlainProgress` elsewhere, a silent tqdm when ``disable``."""
    if disable or on_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, disable=disable)
    return PlainProgress(iterable, total=total, desc=desc, unit=unit, initial=initial)


__all__ = ["PlainProgress", "on_terminal", "progress"]
