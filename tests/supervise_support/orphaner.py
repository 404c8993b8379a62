"""A stand-in worker that leaves orphans behind: each grandchild outlives its parent, then exits.

Usage: orphaner.py OUT_DIR COUNT
  For i in range(COUNT): fork an intermediate that forks a grandchild and exits at once (and is
  reaped here), so the grandchild is orphaned. Each grandchild waits until its parent has gone,
  writes its new parent's pid to OUT_DIR/orphan-<i>, and exits, leaving a zombie unless whoever
  adopted it reaps it. Then this process sleeps until it is signalled.
"""

from __future__ import annotations

import os
import sys
import time


def grandchild(out_dir: str, index: int, parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.01)
    time.sleep(0.2)
    path = os.path.join(out_dir, f"orphan-{index}")
    with open(path + ".tmp", "w") as handle:
        handle.write(str(os.getppid()))
    os.rename(path + ".tmp", path)
    os._exit(0)


def main() -> int:
    out_dir, count = sys.argv[1], int(sys.argv[2])
    for index in range(count):
        intermediate = os.fork()
        if intermediate == 0:
            me = os.getpid()
            if os.fork() == 0:
                grandchild(out_dir, index, me)
            os._exit(0)
        os.waitpid(intermediate, 0)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
