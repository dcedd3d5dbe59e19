"""Ctrl-C and SIGTERM that no library can lose: the command line's signal handlers.

Why: a few libraries imported while the command builds its pipeline catch every exception around
an optional import, ``KeyboardInterrupt`` included (mpmath, which torch imports through sympy:
``try: import gmpy2 ... except: pass``; pyGLFW, which MuJoCo imports: ``try: import glfw_preview
except: ...``). A Ctrl-C that lands in one of those few milliseconds vanished, and the command went
on to train as if nothing had been pressed (seen once in CI: ``tests/test_faults.py``, Ctrl-C at
0.2 s, still training 120 s later). The handlers installed here remember every interrupt they
raise; :func:`raise_swallowed_interrupt`, called where the command line passes a point of no
return (the pipeline built, each training iteration), raises it again if it never got out.
"""

from __future__ import annotations

import signal

__all__ = ["handle_interrupts", "raise_swallowed_interrupt"]

_pending: list[str] = []  # the interrupts raised and not yet seen leaving (one entry each)


def handle_interrupts() -> None:
    """Installs the command line's handlers: SIGINT (Ctrl-C) raises ``KeyboardInterrupt()`` and
    SIGTERM (a scheduler stopping the job) ``KeyboardInterrupt("signal 15")``, so both end a run
    the same way (marked KILLED); each is remembered until :func:`raise_swallowed_interrupt`."""
    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


def raise_swallowed_interrupt() -> None:
    """Raises again the interrupt a library swallowed (nothing when none was raised). Called only
    where an interrupt that got out would have left already, so any remembered here was lost."""
    if _pending:
        raise KeyboardInterrupt(_pending.pop())


def _raise(signum: int, frame: object) -> None:
    message = "" if signum == signal.SIGINT else f"signal {signum}"
    _pending[:] = [message]
    raise KeyboardInterrupt(message) if message else KeyboardInterrupt
