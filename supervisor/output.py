"""The process's stdout and stderr as cointoss writes them: a write that fails never crashes it.

stderr carries logs: a line it cannot take (closed, `/dev/full`) is dropped, so a log sink that
fails never stops a worker from starting nor the supervisor from working. stdout carries results:
its first failed write raises `OutputError`, which `cli.main` turns into an exit code; whatever is
still buffered is then dropped, so the interpreter's own flush at exit cannot fail after `main`
returned (Python would print a traceback-like line and exit 120).
"""

from __future__ import annotations

import errno
import io
import os
import sys
from typing import IO, Any


class OutputError(Exception):
    """stdout refused a write: `error` says why (EPIPE when its reader went away)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or os.strerror(error.errno or errno.EIO))
        self.error = error

    @property
    def broken_pipe(self) -> bool:
        return isinstance(self.error, BrokenPipeError)


class _GuardedFd(io.RawIOBase):
    """fd 1 or 2 (None when it was closed before we started), with the failure policy above."""

    def __init__(self, fd: int | None, *, raises: bool) -> None:
        super().__init__()
        self._fd = fd
        self._raises = raises
        self._failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._fd is None:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return self._fd

    def isatty(self) -> bool:
        return self._fd is not None and os.isatty(self._fd)

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if self._failed:
            return size
        try:
            return os.write(self.fileno(), data)
        except OSError as exc:
            if not self._raises:
                return size  # a full disk may free up: the next log line tries again
            self._failed = True
            raise OutputError(exc) from None


def guard_standard_streams() -> None:
    """Puts the guarded stdout and stderr in place (once, at the start of the process)."""
    sys.stdout = _guarded(sys.stdout, 1, raises=True)
    sys.stderr = _guarded(sys.stderr, 2, raises=False)


def _guarded(stream: IO[str] | None, fd: int, *, raises: bool) -> IO[str]:
    if stream is not None:
        try:
            if stream.fileno() != fd:
                return stream  # already redirected in-process: not ours to wrap
            stream.flush()
        except (OSError, ValueError):
            return stream
    raw = _GuardedFd(fd if stream is not None else None, raises=raises)
    return io.TextIOWrapper(
        io.BufferedWriter(raw),
        encoding=getattr(stream, "encoding", None) or "utf-8",
        errors=getattr(stream, "errors", None) or "backslashreplace",
        line_buffering=getattr(stream, "line_buffering", True),
        write_through=getattr(stream, "write_through", False),
    )
