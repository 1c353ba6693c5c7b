"""Run every benchmark script in this folder: `python benchmarks/run_all.py [--small]`.

CI runs the small sizes so the scripts cannot rot; the full sizes are the ones the issues' targets name.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(script.stem, script)
        module = importlib.util.module_from_spec(spec)
        print(f"\n===== {script.name} {' '.join(argv)}", flush=True)
        t = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            code = module.main(argv)
        except Exception as exc:  # report and go on: one broken benchmark must not hide the others
            print(f"{script.name} failed: {exc!r}")
            code = 1
        print(f"===== {script.name}: {time.perf_counter() - t:.1f} s", flush=True)
        if code:
            failed.append(script.name)
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
