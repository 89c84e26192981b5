"""Logging for workflow scripts: everything to the job's log, bad input also to the terminal."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import polars as pl

from llmrouter.artifacts import InputError

LOG_FORMAT = "%(asctime)s %(levelname)s %(message)s"
# A log record carrying this attribute (set by `warn`) also reaches the terminal.
TERMINAL = "terminal"


def warn(message: str) -> None:
    """Log a warning that run_logged also prints to the terminal: for input a job accepts but
    the user most likely did not mean, which a line in the job's log alone would hide."""
    logging.warning("%s", message, extra={TERMINAL: True})


class _TerminalHandler(logging.Handler):
    """Prints `warn`'s records to `terminal` as one line, shaped like run_logged's errors."""

    def __init__(self, terminal: TextIO | None, log_path: str) -> None:
        super().__init__(logging.WARNING)
        self.terminal, self.log_path = terminal, log_path

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, TERMINAL, False):
            print(f"WARNING: {record.getMessage()} (log: {self.log_path})", file=self.terminal)


@contextmanager
def _output_to(handle: TextIO) -> Iterator[None]:
    """Send sys.stderr and the root logger (at INFO) to `handle`; put back what was there.

    Restoring matters because a process may run several logged steps one after another
    (tests/test_logs.py does): the next step must not find stderr or a logging handler bound
    to the previous step's closed log file.
    """
    root = logging.getLogger()
    saved_stderr, saved_handlers, saved_level = sys.stderr, root.handlers[:], root.level
    handler = logging.StreamHandler(handle)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    # Detach rather than close the previous handlers (basicConfig(force=True) would close
    # them, and a closed FileHandler cannot be put back).
    for old in saved_handlers:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    sys.stderr = handle
    try:
        yield
    finally:
        handler.flush()
        root.removeHandler(handler)
        handler.close()
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)
        sys.stderr = saved_stderr


def thread_pools() -> str:
    """One line with the size of each thread pool a job may start (llmrouter.threads)."""
    return (f"thread pools: polars {pl.thread_pool_size()}, tokenizers "
            f"{os.environ.get('RAYON_NUM_THREADS', 'all CPUs')}, OpenMP/BLAS "
            f"{os.environ.get('OMP_NUM_THREADS', 'all CPUs')}")


@contextmanager
def _native_crashes_to(handle: TextIO) -> Iterator[None]:
    """Python's traceback of a crash in native code (segmentation fault, abort) into `handle`:
    the job's log would otherwise end without a word of where it died. Switched off after.

    Left alone where it is on already (PYTHONFAULTHANDLER, pytest): Python cannot say which
    file it writes to, so it could not be put back.
    """
    if faulthandler.is_enabled():
        yield
        return
    faulthandler.enable(file=handle, all_threads=True)
    try:
        yield
    finally:
        faulthandler.disable()


# The streams to the terminal of the run_logged calls in progress, innermost last.
_TERMINALS: list[TextIO | None] = []


def terminal() -> TextIO | None:
    """Where a job writes what the user should see (progress bars, summary lines): the
    terminal Snakemake runs in, or the SLURM job's output. Inside run_logged, sys.stderr and
    file descriptor 2 are the job's log, so sys.__stderr__ is too. None in a process started
    without a stderr (print then writes to stdout, embed_texts to the log)."""
    return _TERMINALS[-1] if _TERMINALS else sys.__stderr__


def _fileno(stream: TextIO | None) -> int | None:
    """The file descriptor under `stream`, or None where it has none (pytest's capsys, a
    closed stream, no stream at all)."""
    try:
        return stream.fileno() if stream is not None else None
    except (AttributeError, OSError, ValueError):
        return None


@contextmanager
def _native_stderr_to(handle: TextIO, previous: TextIO | None) -> Iterator[TextIO | None]:
    """Point file descriptor 2 at `handle` while inside, and yield the stream that reaches
    the terminal: `previous`, or where `previous` wrote to descriptor 2, a new stream on a copy
    of it. Moving sys.stderr alone leaves out what native code writes there (torch's C++
    warnings, the Rust tokenizers', OpenMP's, a C library's abort message), which would reach
    the terminal, away from the rest of the job's log, or on SLURM another file.

    Nothing is moved when the process started without a stderr (sys.stderr None): the log
    may then be descriptor 2 itself. (Where descriptor 2 was closed later, sys.stderr still
    names it and writes to the log: a terminal that is gone.)
    """
    if previous is None or _fileno(handle) == 2:
        yield previous
        return
    saved = os.dup(2)
    try:
        previous.flush()
        os.dup2(handle.fileno(), 2)
        if _fileno(previous) == 2:
            with os.fdopen(os.dup(saved), "w", buffering=1, encoding=previous.encoding,
                           errors="backslashreplace") as to_terminal:
                yield to_terminal
        else:
            yield previous
    finally:
        try:
            handle.flush()  # a full disk raises here: descriptor 2 is put back all the same
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class Terminated(BaseException):
    """SIGTERM (scancel, a SLURM time limit), raised so that every `finally` runs: Python's
    default SIGTERM exits at once and leaves the atomic writers' temporary files behind."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated while inside; the previous handler is put back after.
    Only the main thread may set a handler (a job's script runs there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        # None: a handler set from C, which Python cannot put back; the default then.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def run_logged(log_path: str, main: Callable[[], None]) -> None:
    """Run `main` with stderr (sys.stderr and file descriptor 2) and logging sent to
    `log_path`, then restore them. `terminal()` reaches the terminal meanwhile.

    An InputError is written to the log and to the terminal (the stderr from before the
    call) as one clear line, and the job exits with status 1 (Snakemake then removes its
    outputs). A `warn` inside `main` goes to both too, and the job goes on. Ctrl-C ends the
    job with status 130 and one line, without a traceback; SIGTERM with status 143, after
    the writers have removed their temporary files.
    """
    # Line-buffered: native code (a crash's traceback too) writes straight to the file, and
    # the lines logged before it must be there first.
    with (open(log_path, "w", buffering=1) as handle,
          _native_stderr_to(handle, sys.stderr) as terminal, _output_to(handle),
          _native_crashes_to(handle)):
        root = logging.getLogger()
        # Added after _output_to has set the log's handler, removed before it restores the
        # previous ones.
        to_terminal = _TerminalHandler(terminal, log_path)
        try:
            root.addHandler(to_terminal)
            _TERMINALS.append(terminal)
            logging.info("%s", thread_pools())
            with _sigterm_raises():
                main()
        except InputError as error:
            logging.error("%s", error)
            print(f"ERROR: {error} (log: {log_path})", file=terminal)
            raise SystemExit(1) from None
        except KeyboardInterrupt:
            # Ctrl-C reaches every job: one line each, not a traceback from deep inside torch
            # or polars. Snakemake removes the job's outputs; the same command resumes.
            logging.error("interrupted")
            print(f"interrupted (log: {log_path})", file=terminal)
            raise SystemExit(130) from None
        except Terminated:
            logging.error("terminated (SIGTERM)")
            print(f"terminated (log: {log_path})", file=terminal)
            raise SystemExit(143) from None
        except Exception:
            # The log file closes before Python would print the traceback: write it now.
            logging.exception("job failed")
            raise
        finally:
            if _TERMINALS and _TERMINALS[-1] is terminal:
                _TERMINALS.pop()
            root.removeHandler(to_terminal)
