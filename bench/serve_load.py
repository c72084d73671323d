"""`landsight serve` under load on loopback: 256x256 4-band predict, 1/8/32 concurrent clients, with and without
dynamic batching in the same run; then RSS after 1,000 and after 10,000 requests.

The server runs as its own process (`landsight serve`, uvicorn) on 127.0.0.1; the load generator is Python (httpx,
asyncio), bounded by a request count per level. Both share the machine's cores, as they would on one host.

    .venv/bin/python -m bench.serve_load [--requests 200] [--rss-requests 10000] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import rasterio
from rasterio.windows import Window

from bench.common import OUT, git_revision, machine, replace_section
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile
from landsight.models.registry import create_model

RGBN = Path(__file__).resolve().parent.parent / "tests" / "data" / "rgbn-time-series" / "rgbn_20160101.tif"
LEVELS = (1, 8, 32)


def model_4band(path: Path) -> Path:
    """An ImageNet-initialised EfficientNet-Lite0 U-Net for 4 bands / 2 classes (speed does not need training)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        model = create_model("unet", "tf_efficientnet_lite0", 4, 2, weights="imagenet")
        spec = BandSpec((1, 2, 3, 4), ("b1", "b2", "b3", "b4"), 4)
        ModelFile("unet", "tf_efficientnet_lite0", spec, Normalization((90.0,) * 4, (40.0,) * 4),
                  ClassTable.from_names(["built"], background=True), 256, model.state_dict()).save(path)
    return path


def body_4band(path: Path) -> bytes:
    """A 256 x 256 4-band uint8 GeoTIFF cut from the RGBN sample."""
    with rasterio.open(RGBN) as src:
        window = Window(100, 100, 256, 256)
        profile = src.profile | {"width": 256, "height": 256, "transform": src.window_transform(window)}
        data = src.read(window=window)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path.read_bytes()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(model: Path, port: int, max_batch: int) -> subprocess.Popen[bytes]:
    """`landsight serve` in its own process; returns once /readyz answers."""
    cmd = [str(Path(sys.executable).parent / "landsight"), "-q", "serve", str(model), "--port", str(port),
           "--max-batch", str(max_batch), "--max-wait-ms", "5", "--device", "cpu", "--max-queue", "256"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not become ready in 120 s")


async def load(url: str, body: bytes, clients: int, total: int) -> dict[str, float]:
    """`clients` concurrent loops sending `total` requests in all: req/s, p50/p99 latency (ms), errors, 5xx."""
    latencies: list[float] = []
    statuses: list[int] = []
    remaining = total

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            try:
                answer = await http.post(url, content=body)
                statuses.append(answer.status_code)
            except httpx.HTTPError:
                statuses.append(0)
            latencies.append(time.perf_counter() - t0)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits, headers={"Content-Type": "image/tiff"}) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    codes = np.array(statuses)
    return {"rps": len(codes) / elapsed, "p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "errors": int((codes != 200).sum()), "5xx": int((codes >= 500).sum() + (codes == 0).sum())}


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="Requests per concurrency level (0: none).")
    parser.add_argument("--rss-requests", type=int, default=10_000, help="Requests for the memory check (0: none).")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    model = model_4band(OUT / "lite0-4band-untrained.pt")
    body = body_4band(OUT / "rgbn-256.tif")
    servers = {max_batch: (port, start_server(model, port, max_batch)) for max_batch, port in
               ((1, free_port()), (8, free_port()))}
    urls = {b: f"http://127.0.0.1:{port}/v1/models/{model.stem}/predict" for b, (port, _) in servers.items()}
    rows, rss = [], {}
    try:
        for url in urls.values():
            asyncio.run(load(url, body, 4, 20))  # warm-up
        # off and on back to back at each level, so that other work on the machine affects both alike
        for clients in LEVELS if args.requests else ():
            for max_batch, url in urls.items():
                r = asyncio.run(load(url, body, clients, args.requests))
                rows.append((max_batch, clients, r))
                print(max_batch, clients, r, flush=True)
        if args.rss_requests:
            pid = servers[8][1].pid
            first = asyncio.run(load(urls[8], body, 8, 1000))
            rss["1000"] = rss_mb(pid)
            rest = asyncio.run(load(urls[8], body, 8, args.rss_requests - 1000))
            rss[str(args.rss_requests)] = rss_mb(pid)
            rss["errors"] = first["errors"] + rest["errors"]
            print("rss", rss, flush=True)
    finally:
        for _, proc in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    write(args, rows, rss)


def write(args: argparse.Namespace, rows: list, rss: dict[str, float]) -> None:
    table = ["| dynamic batching | clients | requests/s | p50 ms | p99 ms | errors | 5xx |",
             "|---|---|---|---|---|---|---|"]
    for max_batch, clients, r in rows:
        label = f"on (max batch {max_batch}, 5 ms)" if max_batch > 1 else "off (max batch 1)"
        table.append(f"| {label} | {clients} | {r['rps']:.1f} | {r['p50']:.0f} | {r['p99']:.0f} | {r['errors']} "
                     f"| {r['5xx']} |")
    flags = sorted({f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile", "fma")
                    if f in Path("/proc/cpuinfo").read_text().split()})
    memory = ""
    if rss:
        (n1, r1), (n2, r2), (_, errors) = rss.items()
        memory = (f"\nServer RSS (batching on) after {int(n1):,} requests: {r1:.0f} MiB; after {int(n2):,}: "
                  f"{r2:.0f} MiB ({(r2 / r1 - 1) * 100:+.1f} %); {errors:.0f} errors in those requests.\n")
    body = (f"Command: `.venv/bin/python -m bench.serve_load --requests {args.requests} --rss-requests "
            f"{args.rss_requests}` (commit {git_revision()}).\nMachine: {machine()}; instruction sets: "
            f"{', '.join(flags)}; load average at the end {os.getloadavg()[0]:.1f} (other work shares these cores).\n"
            "Request: POST /v1/models/NAME/predict, a 256x256 4-band uint8 GeoTIFF (RGBN sample crop), answered "
            "with a COG class mask; EfficientNet-Lite0 U-Net on CPU; server and Python load generator (httpx) on "
            f"the same machine over 127.0.0.1; {args.requests} requests per row.\n\n"
            + ("\n".join(table) + "\n" if rows else "") + memory)
    print(body)
    if not args.no_write:
        title = "Serve load (loopback)" + ("" if rows else ", memory")
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", title, body)


if __name__ == "__main__":
    main()
