"""run_logged (llmrouter/logs.py): each call logs to its own file and leaves stderr and
logging as it found them, so a script may run several logged steps."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys

import pytest

from llmrouter import logs
from llmrouter.artifacts import InputError
from llmrouter.logs import run_logged, warn


def step(message: str):
    """A job's main: one logging line and one line written straight to stderr."""
    def main() -> None:
        logging.info("%s via logging", message)
        print(f"{message} via stderr", file=sys.stderr)
    return main


def test_two_calls_in_a_row_write_both_logs_and_restore_stderr(tmp_path, capsys):
    root = logging.getLogger()
    stderr, handlers, level = sys.stderr, root.handlers[:], root.level
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    run_logged(str(first), step("one"))
    run_logged(str(second), step("two"))
    for path, mine, other in ((first, "one", "two"), (second, "two", "one")):
        text = path.read_text()
        assert f"INFO {mine} via logging" in text and f"{mine} via stderr" in text
        assert other not in text
    assert sys.stderr is stderr
    assert root.handlers == handlers and root.level == level
    print("still usable", file=sys.stderr)
    assert "still usable" in capsys.readouterr().err


def test_bad_input_goes_to_log_and_terminal_and_stderr_is_restored(tmp_path, capsys):
    stderr, handlers = sys.stderr, logging.getLogger().handlers[:]
    log = tmp_path / "bad.log"

    def main() -> None:
        raise InputError("config x.y: wrong")

    with pytest.raises(SystemExit) as exit_:
        run_logged(str(log), main)
    assert exit_.value.code == 1
    assert "ERROR config x.y: wrong" in log.read_text()
    assert f"ERROR: config x.y: wrong (log: {log})" in capsys.readouterr().err
    assert sys.stderr is stderr and logging.getLogger().handlers == handlers


def test_a_crash_is_logged_and_stderr_is_restored(tmp_path):
    stderr = sys.stderr
    log = tmp_path / "crash.log"

    def main() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_logged(str(log), main)
    text = log.read_text()
    assert "job failed" in text and "RuntimeError: boom" in text
    assert sys.stderr is stderr


def test_warn_goes_to_log_and_terminal_and_the_job_goes_on(tmp_path, capsys):
    stderr, handlers = sys.stderr, logging.getLogger().handlers[:]
    log = tmp_path / "warn.log"

    def main() -> None:
        logging.warning("only in the log")
        warn("tasks/x.csv: column 'a/b' ignored")
        logging.info("still running")

    run_logged(str(log), main)
    text = log.read_text()
    assert "WARNING tasks/x.csv: column 'a/b' ignored" in text and "still running" in text
    assert capsys.readouterr().err.splitlines() == [
        f"WARNING: tasks/x.csv: column 'a/b' ignored (log: {log})"]
    assert sys.stderr is stderr and logging.getLogger().handlers == handlers


def test_ctrl_c_ends_the_job_with_one_line_and_status_130(tmp_path, capsys):
    stderr, handlers = sys.stderr, logging.getLogger().handlers[:]
    log = tmp_path / "interrupted.log"

    def main() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run_logged(str(log), main)
    assert exit_.value.code == 130
    assert "ERROR interrupted" in log.read_text()
    assert capsys.readouterr().err == f"interrupted (log: {log})\n"
    assert sys.stderr is stderr and logging.getLogger().handlers == handlers


TERMINATED_JOB = """
import sys, time
from llmrouter.artifacts import atomic_path
from llmrouter.logs import run_logged

def main():
    tmp, final = atomic_path(sys.argv[2])  # as write_table does: unlink in finally
    try:
        print(tmp, flush=True)
        time.sleep(60)
    finally:
        tmp.unlink(missing_ok=True)

run_logged(sys.argv[1], main)
"""


def test_sigterm_lets_the_writers_remove_their_temporary_files(tmp_path):
    # scancel and SLURM's time limit send SIGTERM, whose default ends Python without running
    # any finally: every artifact being written left its .<name>.tmp behind.
    log = tmp_path / "job.log"
    job = subprocess.Popen([sys.executable, "-c", TERMINATED_JOB, str(log),
                            str(tmp_path / "out.parquet")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    tmp = job.stdout.readline().strip()
    assert tmp.endswith(".tmp") and (tmp_path / tmp).exists()
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=30)
    assert job.returncode == 143
    assert list(tmp_path.iterdir()) == [log]
    assert "ERROR terminated (SIGTERM)" in log.read_text()
    assert err == f"terminated (log: {log})\n"


CRASHING_JOB = """
import ctypes, sys
from llmrouter.logs import run_logged

def load_native_library():
    print("loading the library", file=sys.stderr)
    ctypes.string_at(0)  # reads address 0: a segmentation fault, as a broken C extension

run_logged(sys.argv[1], load_native_library)
"""


def test_a_crash_in_native_code_leaves_where_it_died_in_the_log(tmp_path):
    # A segmentation fault ends the process before any Python handler runs: the log ended at
    # its last line, with no word of the crash, and Snakemake showed that log.
    log = tmp_path / "job.log"
    done = subprocess.run([sys.executable, "-c", CRASHING_JOB, str(log)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == -signal.SIGSEGV
    text = log.read_text()
    # what the job wrote before it died, then where it died
    assert text.index("loading the library") < text.index("Fatal Python error: Segmentation "
                                                            "fault")
    assert 'line 7 in load_native_library' in text


CRASH_AFTER_THE_JOB = """
import ctypes, faulthandler, sys
from llmrouter.logs import run_logged

own = open(sys.argv[2], "w")
faulthandler.enable(file=own)  # as pytest does, on a file Python cannot name later
run_logged(sys.argv[1], lambda: None)
ctypes.string_at(0)
"""


def test_a_crash_handler_already_on_is_left_alone(tmp_path):
    # Python cannot say which file an enabled handler writes to, so one already on (pytest,
    # PYTHONFAULTHANDLER) could not be put back: re-enabled on stderr, a later crash went there.
    log, own = tmp_path / "job.log", tmp_path / "own.txt"
    done = subprocess.run([sys.executable, "-c", CRASH_AFTER_THE_JOB, str(log), str(own)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in own.read_text()
    assert "Fatal Python error" not in done.stderr + log.read_text()


NATIVE_WRITER_JOB = """
import os, sys
from llmrouter.artifacts import InputError
from llmrouter.logs import run_logged, terminal

def main():
    os.write(2, b"native warning\\n")  # what torch's C++ or the Rust tokenizers write
    print("progress bar", file=terminal(), flush=True)
    if sys.argv[2] == "fail":
        raise InputError("config x.y: wrong")

run_logged(sys.argv[1], main)
os.write(2, b"after the job\\n")
"""


@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_native_writes_to_stderr_go_to_the_log_and_progress_to_the_terminal(tmp_path, outcome):
    # Only sys.stderr used to be moved: what native code wrote to file descriptor 2 reached the
    # terminal (on SLURM, another file), away from the job's log.
    log = tmp_path / "job.log"
    done = subprocess.run([sys.executable, "-c", NATIVE_WRITER_JOB, str(log), outcome],
                          capture_output=True, text=True, timeout=60)
    text = log.read_text()
    assert "native warning" in text and "progress bar" not in text
    assert "native warning" not in done.stderr
    if outcome == "ok":
        assert done.returncode == 0
        assert done.stderr == "progress bar\nafter the job\n"
    else:
        assert done.returncode == 1
        assert done.stderr == f"progress bar\nERROR: config x.y: wrong (log: {log})\n"
        assert "ERROR config x.y: wrong" in text


NO_STDERR_JOB = """
import logging, sys
from llmrouter.logs import run_logged

assert sys.stderr is None  # started with descriptor 2 closed
run_logged(sys.argv[1], lambda: logging.info("the job ran"))
"""


def test_a_job_started_without_stderr_still_runs_and_logs(tmp_path):
    # With descriptor 2 closed, the log file opens as descriptor 2 itself: moving descriptor 2
    # onto it failed before the job's main ran.
    log = tmp_path / "job.log"
    done = subprocess.run(["bash", "-c", 'exec "$0" -c "$1" "$2" 2>&-', sys.executable,
                           NO_STDERR_JOB, str(log)], stdout=subprocess.PIPE, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "INFO the job ran" in log.read_text()


def test_a_failure_before_main_leaves_no_closed_terminal_behind(tmp_path, monkeypatch):
    # The stream to the terminal closes with the call: left on the stack, a later job's
    # progress bar wrote to a closed file.
    def broken() -> str:
        raise RuntimeError("no thread pools")

    monkeypatch.setattr(logs, "thread_pools", broken)
    with pytest.raises(RuntimeError, match="no thread pools"):
        run_logged(str(tmp_path / "job.log"), lambda: None)
    assert logs.terminal() is sys.__stderr__
    assert not [h for h in logging.getLogger().handlers if isinstance(h, logs._TerminalHandler)]
