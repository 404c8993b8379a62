"""Starting the worker as our child, the way tini does: fork, reset signals, own process group, exec.

The supervisor keeps the forwarded signals blocked and Python leaves SIGPIPE/SIGXFSZ ignored; a
worker must not inherit either, so the forked child empties its signal mask and sets every
disposition back to default before exec. (`os.posix_spawn` cannot do this exactly: glibc leaves
its two internal real-time signals ignored in the new program; `subprocess` cannot clear a
blocked mask without a `preexec_fn`, which also forks.)

The child gets its own process group: a terminal's ^C/^Z then reach only the supervisor, which
forwards each signal once and knows that a stop was asked for; the final KILL of a stop that ran
out of time goes to that whole group, so no helper process of the worker outlives it.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Mapping, Sequence

from supervisor.errors import CoinTossError, CommandNotExecutableError, CommandNotFoundError
from supervisor.supervision.signals import CATCHABLE

EXEC_FAILED_STATUS = 127


def spawn(path: str, argv: Sequence[str], env: Mapping[str, str]) -> int:
    """Starts the worker and returns its pid; an exec failure raises 127/126 here, in the parent."""
    read_end, write_end = os.pipe()  # close-on-exec: EOF on it means the exec succeeded
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns here
        _exec_in_child(path, argv, env, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        report = pipe.read()
    if report:
        os.waitpid(pid, 0)
        raise _exec_error(argv[0], int(report))
    return pid


def _exec_in_child(path: str, argv: Sequence[str], env: Mapping[str, str], report_fd: int) -> None:
    code = 0
    try:
        os.setpgid(0, 0)
        # An ignored disposition survives execve, and whoever started us may have ignored any
        # signal, real-time ones included: the worker starts with every default.
        for signum in CATCHABLE:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, ())
        os.execve(path, list(argv), dict(env))
    except OSError as exc:
        code = exc.errno or errno.ENOEXEC
    finally:
        os.write(report_fd, str(code or errno.ENOEXEC).encode())
        os._exit(EXEC_FAILED_STATUS)


def _exec_error(program: str, code: int) -> CoinTossError:
    if code == errno.ENOENT:
        return CommandNotFoundError(f"{program}: command not found")
    return CommandNotExecutableError(f"{program}: cannot execute ({os.strerror(code)})")
