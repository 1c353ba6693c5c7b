"""README.md runs: every fenced ```bash block, in order, as a user would type it from the repository root.

Convention: a block whose fence is preceded (blank lines aside) by an HTML comment starting
``<!-- readme-test: skip`` is not run — the two set-up commands at the top (they install, and one serves until
stopped). Use it sparingly: a skipped block is a block nobody checks.

The blocks run one after another with ``bash -e`` in a scratch directory holding a copy of the repository's
data/ folder (so relative paths such as data/examples/planners.csv resolve and nothing is written into the
checkout); variables exported by one block stay set for the next. ``zeren`` is this interpreter's
(``python -m zeren``), ``ZEREN_STORE`` starts as the scratch directory's demo store, and no other ZEREN_*
setting leaks in from the environment. A failure names the README line and command and shows the output.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SKIP_MARK = "<!-- readme-test: skip"

pytestmark = pytest.mark.timeout(300)


@dataclass
class Block:
    line: int  # README line of the first command (1-based)
    code: str
    skipped: bool


def readme_blocks(text: str) -> list[Block]:
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            assert end is not None, f"README.md line {i + 1}: ```bash block never closed"
            before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            blocks.append(Block(i + 2, "\n".join(lines[i + 1:end]), before.startswith(SKIP_MARK)))
            i = end + 1
        else:
            i += 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if not b.skipped]


def test_the_convention_is_used_sparingly():
    skipped = [b for b in BLOCKS if b.skipped]
    # the two set-up commands at the top, nothing else
    assert [b.code for b in skipped] == ["python3 -m pip install -e . && zeren serve --demo",
                                         "python3 -m pip install -e '.[test]' && python3 -m pytest"]
    assert len(RUNNABLE) >= 3


def _commands(block: Block) -> list[str]:
    return [ln.split("  #")[0].strip() for ln in block.code.split("\n") if ln.strip() and not ln.lstrip().startswith("#")]


def test_the_files_the_walk_through_reads_are_shipped():
    """Every data/... path the commands name exists in the repository (a fresh clone has them)."""
    named = {tok for b in RUNNABLE for cmd in _commands(b) for tok in shlex.split(cmd) if tok.startswith("data/")}
    assert {"data/examples/subdistricts.zip", "data/examples/planners.csv", "data/examples/appointments.csv",
            "data/examples/projects.csv", "data/examples/centres.csv"} <= named
    missing = sorted(p for p in named if not (REPO / p).is_file())
    assert not missing, f"README.md names files that are not in the repository: {missing}"


def _shim(bin_dir: Path) -> None:
    """`zeren` = this interpreter's Zeren, whatever else is on PATH."""
    bin_dir.mkdir()
    shim = bin_dir / "zeren"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m zeren "$@"\n', encoding="utf-8")
    shim.chmod(0o755)


def test_every_bash_block_runs(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copytree(REPO / "data", work / "data", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _shim(tmp_path / "bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZEREN_")}
    env.update(PATH=f"{tmp_path / 'bin'}{os.pathsep}{env.get('PATH', '')}", ZEREN_STORE=str(work / "demo.gpkg"),
               PYTHONSAFEPATH="1", PYTHONUTF8="1")
    state = tmp_path / "exported.sh"
    state.write_text("", encoding="utf-8")
    outputs: list[str] = []
    for block in RUNNABLE:
        # The ERR trap reports the README line: the block's commands start on script line 4.
        script = (f"source {shlex.quote(str(state))}\n"
                  f"trap 'echo \"readme-test: README.md line $(( LINENO - 4 + {block.line} )) exited $?: "
                  f"$BASH_COMMAND\" >&2' ERR\n"
                  "set -o pipefail\n"
                  f"{block.code}\n"
                  f"export -p > {shlex.quote(str(state))}\n")
        proc = subprocess.run(["bash", "-e", "-c", script], cwd=work, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=240, check=False)
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-60:])
            failing = re.findall(r"readme-test: .*", proc.stdout)
            pytest.fail(f"README.md block at line {block.line} failed (exit {proc.returncode}): "
                        f"{failing[-1] if failing else block.code}\n--- output (last 60 lines) ---\n{tail}",
                        pytrace=False)
        outputs.append(proc.stdout)
    # what the commands say they write is there
    written = [m for b in RUNNABLE for cmd in _commands(b) for m in re.findall(r"--(?:out|map) (\S+)", cmd)]
    assert len(written) >= 8
    absent = [w for w in written if not (work / w).is_file() or (work / w).stat().st_size == 0]
    assert not absent, f"commands in README.md exited 0 but did not write {absent}"
    assert (work / "demo.gpkg").is_file()
    assert not (work / "zeren.gpkg").exists(), "a command wrote the default store: ZEREN_STORE was not honoured"
