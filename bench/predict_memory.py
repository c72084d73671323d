"""Peak memory of `landsight predict` on a 2,000 x 2,000 and a 20,000 x 20,000 px raster (`/usr/bin/time -v`).

Both rasters are the Atlanta sample tiled (written block by block, never held whole; not committed). Prediction must
keep peak RSS under 2 GB and within 1.2x of the small raster's peak: memory does not grow with the raster.

    .venv/bin/python -m bench.predict_memory [--sizes 2000 20000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.common import OUT, git_revision, machine, model_file, replace_section, tiled_raster


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """(peak resident set size in MB, wall seconds) of `command` run under /usr/bin/time -v."""
    t0 = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t0
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    return kb / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    model = model_file(OUT / "lite0-untrained.pt")
    landsight = str(Path(sys.executable).with_name("landsight"))
    rows, peaks = [], []
    for size in args.sizes:
        image = tiled_raster(OUT / f"atlanta-{size}.tif", size, size)
        out = OUT / f"pred-{size}.tif"
        peak, seconds = peak_rss_mb([landsight, "-q", "predict", str(model), str(image), "-o", str(out),
                                     "--overwrite", "--device", "cpu"])
        peaks.append(peak)
        rows.append(f"| {size:,} x {size:,} | {peak:,.0f} MB | {seconds:,.0f} s |")
        print(rows[-1], flush=True)
    ratio = peaks[-1] / peaks[0]
    body = (f"Command: `.venv/bin/python -m bench.predict_memory --sizes {' '.join(map(str, args.sizes))}` "
            f"(commit {git_revision()}), each size a separate `landsight predict` process under `/usr/bin/time -v`.\n"
            f"Machine: {machine()}.\n\n| raster | peak RSS | wall time |\n|---|---|---|\n" + "\n".join(rows) +
            f"\n\nLargest / smallest peak: **{ratio:.2f}x** (target <= 1.2x, and < 2 GB).\n")
    print(body)
    if not args.no_write:
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", "predict peak memory", body)


if __name__ == "__main__":
    main()
