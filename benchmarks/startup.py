"""Start-up cost of `cointoss exec -- true` against the import floor of its own dependencies.

Whole-process wall time, median of N runs each, the three commands interleaved so that load
from other processes hits them alike:

  exec    python -m supervisor exec -- true   (weight 1: checks off, no Redis touched)
  script  cointoss exec -- true               (a console script as pip writes it)
  floor   python -c "import pydantic_settings, structlog"
  bare    python -c pass

Both cointoss rows run this checkout: `python -m supervisor`, and a temporary `cointoss` script
with the same content pip generates for the `cointoss` entry point (the package is never
installed in a worktree). Target: exec <= 1.15 x floor.

    python benchmarks/startup.py [--runs 25]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.15


# What pip writes for `[project.scripts] cointoss = "supervisor.cli:main"`.
CONSOLE_SCRIPT = """#!{python}
import re
import sys
from supervisor.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def console_script(directory: Path) -> str:
    script = directory / "cointoss"
    script.write_text(CONSOLE_SCRIPT.format(python=sys.executable))
    script.chmod(0o755)
    return str(script)


def commands(script: str) -> dict[str, list[str]]:
    true = shutil.which("true") or "/bin/true"
    return {
        "exec": [sys.executable, "-m", "supervisor", "exec", "--", true],
        "script": [script, "exec", "--", true],
        "floor": [sys.executable, "-c", "import pydantic_settings, structlog"],
        "bare": [sys.executable, "-c", "pass"],
    }


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}
    env.pop("ECS_CONTAINER_METADATA_URI_V4", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    # Checks off: weight 1 never looks at a Redis, so the URL need not answer.
    env["MIGRATION_NEW_REDIS_URL"] = "redis://127.0.0.1:1/0"
    env["MIGRATION_NEW_WEIGHT"] = "1"
    return env


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        argv,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=25, help="runs per command (at least 20)")
    runs = max(parser.parse_args().runs, 20)
    with tempfile.TemporaryDirectory(prefix="cointoss-bench-") as directory:
        measure(runs, environment(), commands(console_script(Path(directory))))


def measure(runs: int, env: dict[str, str], argvs: dict[str, list[str]]) -> None:
    for argv in argvs.values():  # warm the page cache and .pyc files once
        wall_time(argv, env)
    samples: dict[str, list[float]] = {name: [] for name in argvs}
    for _ in range(runs):
        for name, argv in argvs.items():
            samples[name].append(wall_time(argv, env))
    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"python {sys.version.split()[0]}, {runs} runs each, median whole-process wall time")
    for name, argv in argvs.items():
        shown = "cointoss " + " ".join(argv[1:]) if name == "script" else " ".join(argv[1:])
        print(f"  {name:<6} {median[name] * 1000:8.1f} ms   {shown}")
    worst = max(median["exec"], median["script"]) / median["floor"]
    print(f"exec   / floor = {median['exec'] / median['floor']:.3f}  (target <= {TARGET_RATIO})")
    print(f"script / floor = {median['script'] / median['floor']:.3f}  (target <= {TARGET_RATIO})")
    print(f"exec   / bare  = {median['exec'] / median['bare']:.3f}")
    print(f"floor  / bare  = {median['floor'] / median['bare']:.3f}")
    print("verdict:", "within target" if worst <= TARGET_RATIO else "ABOVE target")


if __name__ == "__main__":
    main()
