"""Run every command of README.md's ``bash`` blocks, in order, in a fresh directory.

Each command runs with ``bash`` in one temporary working directory (so files one
command writes are there for the next), with ``../shared`` linked to the project's
shared data and ``rankzc`` meaning this checkout's CLI. Prints PASS/FAIL/SKIP and
seconds per command; exits non-zero when one fails.

    nice -n 10 python benchmarks/readme_commands.py [--include-long] [--keep DIR]

``pip install`` is never run (what follows it on the line is). Skipped unless
``--include-long``: the whole test suite
(``python -m pytest``) and rebuilding the shipped benchmark (``--archs 200``, about half
an hour). ``[...]`` in a README command marks optional flags and is left out.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LONG = (
    (re.compile(r"^python -m pytest"), "the whole test suite"),
    (re.compile(r"--archs 200\b"), "rebuilds the shipped benchmark (about 30 min)"),
    (re.compile(r"benchmarks/build_default.py"), "finalises the shipped benchmark"),
)


def readme_commands(text: str) -> list[str]:
    """Every command line of the ``bash`` blocks (continuation lines joined) and every
    ``python`` block (as one ``python -c`` command), in README order."""
    cmds = []
    for lang, block in re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S):
        if lang == "python":
            cmds.append("python -c " + shlex.quote(block))
            continue
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            line = re.sub(r"\s+#\s.*$", "", line)  # trailing comment
            line = re.sub(r"\s*\[--[^\]]*\]", "", line)  # optional flags: [--format json]
            cmds.append(" ".join(line.split()))
    return cmds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include-long", action="store_true", help="also run the long commands")
    ap.add_argument(
        "--keep", type=Path, default=None, help="work in DIR, keep it and the logs in DIR/logs"
    )
    ap.add_argument(
        "--shared",
        type=Path,
        default=Path(os.environ.get("RANKZC_SHARED", ROOT.parent / "shared")),
        help="the shared data directory (linked as ../shared)",
    )
    args = ap.parse_args()
    cmds = readme_commands((ROOT / "README.md").read_text())
    base = Path(tempfile.mkdtemp(prefix="rankzc-readme-")) if args.keep is None else args.keep
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)
    if args.shared.exists() and not (base / "shared").exists():
        (base / "shared").symlink_to(args.shared.resolve())
    bindir = base / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "rankzc"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "from rankzc.cli import main; main()" "$@"\n'
    )
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # `python benchmarks/x.py` commands refer to the checkout
    if not (work / "benchmarks").exists():
        (work / "benchmarks").symlink_to(ROOT / "benchmarks")

    failed = 0
    total = time.perf_counter()
    print(f"working directory: {work}", flush=True)
    for i, cmd in enumerate(cmds, 1):
        if cmd.startswith("pip install"):  # run what follows the installation
            rest = [part.strip() for part in cmd.split("&&") if "pip install" not in part]
            print(f"[{i:2d}] SKIP            pip install ...  (installs packages)", flush=True)
            if not rest:
                continue
            cmd = " && ".join(rest)
        reason = next((why for pat, why in LONG if pat.search(cmd)), None)
        if reason and not args.include_long:
            print(f"[{i:2d}] SKIP            {cmd[:80]}  ({reason})", flush=True)
            continue
        t0 = time.perf_counter()
        res = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True, text=True)
        secs = time.perf_counter() - t0
        if args.keep is not None:  # every command's output, for a look afterwards
            logs = base / "logs"
            logs.mkdir(exist_ok=True)
            (logs / f"{i:02d}.txt").write_text(f"$ {cmd}\n{res.stdout}\n--- stderr\n{res.stderr}")
        ok = res.returncode == 0
        failed += not ok
        shown = cmd if len(cmd) < 100 else cmd[:97] + "..."
        print(f"[{i:2d}] {'PASS' if ok else 'FAIL'} {secs:7.1f} s  {shown}", flush=True)
        if not ok:
            tail = (res.stderr or res.stdout).strip().splitlines()[-5:]
            print("       " + "\n       ".join(tail), flush=True)
    print(f"{len(cmds)} commands, {failed} failed, {time.perf_counter() - total:.0f} s in all")
    if args.keep is None:
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
