"""Where cointoss's log lines go: one `write(2)` per line, and, for the supervisor, never a long wait.

structlog's `WriteLogger` hands over each event as one line, newline included; this file-like
object passes it on in one system call, so that a line of at most PIPE_BUF bytes cannot be torn on a pipe shared
with the worker.

A log pipe that nobody reads (a stalled log driver) fills up, and a blocking write would then
stop the supervisor's loop: no signal forwarded, no stop timeout kept. After `never_block()`, a
line that does not fit waits in memory and is retried from the loop. The non-blocking flag is set
on a description of the pipe of our own (`/proc/self/fd/2` opened again), never on the one the
worker shares, whose writes must keep blocking as they always did. Only a pipe or FIFO gets this:
a file or a terminal does not stall that way, and a file opened again would not share our offset.
"""

from __future__ import annotations

import io
import os
import select
import stat
import threading
import time
from collections import deque
from typing import IO, Any

# Lines kept while the pipe is full; past this the oldest are dropped (and counted): a stalled
# log driver must not turn into a supervisor that grows without bound.
PENDING_LIMIT_BYTES = 1024 * 1024


class LineSink:
    """A file-like target for `structlog.WriteLogger`: `write` gets one whole line at a time."""

    def __init__(self, stream: IO[Any]) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            self._fd = None  # an in-memory stream (tests, `report` on a buffer)
        self._nonblocking = False
        self._pending: deque[bytes] = deque()
        self._pending_bytes = 0
        self._lock = threading.Lock()  # the auto-mover's thread logs too; the loop retries
        self.dropped = 0

    def write(self, text: str) -> int:
        line = text.encode()
        if self._fd is None:
            self._stream.write(line if _is_binary(self._stream) else text)
        elif self._nonblocking:
            with self._lock:
                self._pending.append(line)
                self._pending_bytes += len(line)
                self._retry()
                self._bound_pending()
        else:
            self._stream.flush()  # text someone printed on the same stream goes first
            _write_all(self._fd, line)
        return len(text)

    def flush(self) -> None:
        """Each line is written at once; nothing is buffered here (pending lines wait for `retry`)."""

    def never_block(self) -> bool:
        """From now on a full pipe keeps lines pending instead of blocking; False if not a pipe."""
        if self._fd is None or not stat.S_ISFIFO(os.fstat(self._fd).st_mode):
            return False
        try:
            fd = os.open(f"/proc/self/fd/{self._fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return False
        self._stream.flush()
        self._fd, self._nonblocking = fd, True
        return True

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def retry(self) -> None:
        """Writes pending lines, oldest first, until the pipe is full again."""
        with self._lock:
            self._retry()

    def _retry(self) -> None:
        assert self._fd is not None
        while self._pending:
            line = self._pending[0]
            try:
                written = os.write(self._fd, line)
            except BlockingIOError:
                return
            except OSError:  # EPIPE: no reader left at all; nothing will ever take them
                self.dropped += len(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                return
            self._pending.popleft()
            self._pending_bytes -= len(line)
            if written < len(line):  # only a line longer than PIPE_BUF can be split
                self._pending.appendleft(line[written:])
                self._pending_bytes += len(line) - written

    def drain(self, timeout_s: float) -> None:
        """Waits up to `timeout_s` for the pipe to take what is pending (before exiting)."""
        deadline = time.monotonic() + timeout_s
        poller = select.poll()
        if self._fd is not None:
            poller.register(self._fd, select.POLLOUT)
        while self._pending and (left := deadline - time.monotonic()) > 0:
            poller.poll(left * 1000)
            self.retry()

    def _bound_pending(self) -> None:
        while self._pending_bytes > PENDING_LIMIT_BYTES and len(self._pending) > 1:
            self._pending_bytes -= len(self._pending.popleft())
            self.dropped += 1


def _is_binary(stream: IO[Any]) -> bool:
    return not isinstance(stream, io.TextIOBase)


def _write_all(fd: int, data: bytes) -> None:
    """One call for a line up to PIPE_BUF; the loop only ever runs for a longer one (or a file)."""
    while data:
        data = data[os.write(fd, data) :]
