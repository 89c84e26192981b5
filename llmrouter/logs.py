"""Logging for workflow scripts: everything to the job's log, bad input also to the terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from llmrouter.artifacts import InputError


def run_logged(log_path: str, main: Callable[[], None]) -> None:
    """Run `main` with stderr and logging sent to `log_path`.

    An InputError is written to the log and to the terminal as one clear line, and the job
    exits with status 1 (Snakemake then removes its outputs).
    """
    terminal = sys.__stderr__
    with open(log_path, "w") as handle:
        sys.stderr = handle
        logging.basicConfig(stream=handle, level=logging.INFO, force=True,
                            format="%(asctime)s %(levelname)s %(message)s")
        try:
            main()
        except InputError as error:
            logging.error("%s", error)
            print(f"ERROR: {error} (log: {log_path})", file=terminal)
            raise SystemExit(1) from None
        except Exception:
            # The log file closes before Python would print the traceback: write it now.
            logging.exception("job failed")
            raise
        finally:
            handle.flush()
