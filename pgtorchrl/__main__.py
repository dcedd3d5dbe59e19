"""The command line's one entry point: ``python -m pgtorchrl`` and the installed ``pgtorchrl``
script both run :func:`run`, so both answer Ctrl-C the same way and leave the same way."""

import os
import sys


def run() -> None:
    """Runs the command line and ends the process with its exit code. Ctrl-C before the command
    could open anything (its imports, validation) is one line and exit 130."""
    from pgtorchrl.record.interrupts import handle_interrupts  # signal only: nothing to interrupt

    handle_interrupts()  # SIGTERM as Ctrl-C, and a Ctrl-C a library swallows raised again
    try:
        from pgtorchrl.cli import main  # inside the handler: Ctrl-C during the command line's imports is caught

        code = main()
    except (KeyboardInterrupt, ImportError) as err:
        # Ctrl-C inside a compiled module's initialization (numpy's, torch's) arrives as
        # "ImportError: initialization failed", caused by the KeyboardInterrupt
        if not _interrupted(err):
            raise
        print("pgtorchrl: error: interrupted before any run was opened", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # `pgtorchrl list | head`: the reader has gone; stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
        code = 141  # 128 + SIGPIPE, a shell's code for a pipe's writer stopped this way
    from pgtorchrl.record.fast_exit import leave

    leave(code)  # the MLflow writer has ended and every file is closed (see fast_exit for why)


def _interrupted(err: BaseException) -> bool:
    """Whether ``err`` was caused by a ``KeyboardInterrupt`` (anywhere down its chain)."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


if __name__ == "__main__":
    run()
