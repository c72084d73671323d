"""Fixtures and checks of the fault suite.

Inputs are small crops of the real samples (tests/data, landsight/sample_data) written once per session; tiny models
are trained once through the real CLI. Commands run in-process through click's runner, or, where a real process is
needed (SIGKILL, a file-size limit, a read-only mount), as forked children of a `Zygote` that imported everything once.
Every refused case is checked by `assert_refused`: exit code 2, no traceback, a message naming the value.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

from landsight.cli.main import cli
from tests.conftest import DATA, SAMPLE

ATLANTA, BUILDINGS = SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson"
L8, L8_QA = DATA / "landsat8-clouds" / "l8-crop.tif", DATA / "landsat8-clouds" / "l8-bqa-crop.tif"
TINY_SEG = ["--arch", "fpn", "--encoder", "mobilenetv3_small_050", "--weights", "none", "--chip-size", "64",
            "--epochs", "1", "--chips-per-epoch", "8", "--batch-size", "4"]
"""Training settings of the tiny segmentation models (an 8 MB FPN, one epoch of eight 64 px chips)."""
SCHEME = ["--window", "128", "--overlap", "32"]
"""Inference windows for the 256 px crops."""
LEFTOVERS = (".*.part*", "*.strips.tif", "*.resume.pt", "*.work", ".spill/*")
"""Glob patterns of what an interrupted or failed command could leave behind."""


@dataclasses.dataclass
class Outcome:
    """What a command did: exit status, everything it printed, and the traceback of an escaped exception."""

    rc: int
    output: str
    crash: str = ""


def invoke(*args: object) -> Outcome:
    """`landsight ARGS` in-process; an exception escaping the command is kept as `crash`, not raised."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit) and result.exc_info:
        crash = "".join(traceback.format_exception(*result.exc_info))
    return Outcome(result.exit_code, result.output, crash)


def assert_refused(outcome: Outcome, *names: object) -> None:
    """Exit code 2, no traceback, and each of `names` in the message (a path by its file name, an option as is)."""
    assert not outcome.crash, f"traceback instead of exit 2:\n{outcome.crash}\n{outcome.output}"
    assert "Traceback" not in outcome.output, outcome.output
    assert outcome.rc == 2, f"exit code {outcome.rc}, expected 2:\n{outcome.output}"
    for name in names:
        text = name.name if isinstance(name, Path) else str(name)
        assert text in outcome.output, f"the message does not name {text!r}:\n{outcome.output}"


def assert_succeeded(outcome: Outcome) -> None:
    """Exit code 0 and no traceback."""
    assert not outcome.crash and "Traceback" not in outcome.output, f"{outcome.crash}\n{outcome.output}"
    assert outcome.rc == 0, f"exit code {outcome.rc}:\n{outcome.output}"


def leftovers(folder: Path) -> list[str]:
    """Temporaries, strips, resume states, work folders and spilled windows anywhere under `folder`."""
    found = {p for pattern in LEFTOVERS for p in folder.rglob(pattern)}
    return sorted(str(p.relative_to(folder)) for p in found)


def assert_absent(*paths: Path) -> None:
    """None of `paths` exists, and their folders hold no leftovers of a failed write."""
    for path in paths:
        assert not path.exists(), f"{path} exists after a refused command"
        if path.parent.is_dir():
            assert not leftovers(path.parent), leftovers(path.parent)


def read_raster(path: Path) -> np.ndarray:
    """Every band of a raster, read in full (raises on a truncated or corrupt file)."""
    with rasterio.open(path) as src:
        return src.read()


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and folder (None) under `folder`, hidden ones included, by relative path."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def crop(src_path: Path, dst_path: Path, window: Window, dtype: str | None = None) -> Path:
    """A plain (untiled) GeoTIFF holding `window` of `src_path`, optionally cast to `dtype`."""
    with rasterio.open(src_path) as src:
        data = src.read(window=window)
        profile = {"driver": "GTiff", "width": int(window.width), "height": int(window.height), "count": src.count,
                   "dtype": dtype or src.dtypes[0], "crs": src.crs, "transform": src.window_transform(window),
                   "nodata": None if dtype else src.nodata}
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data.astype(profile["dtype"]))
    return dst_path


def shifted_labels(src: Path, dst: Path, dx: float) -> Path:
    """`src` GeoJSON with every coordinate moved `dx` CRS units east (labels that miss the image)."""
    collection = json.loads(src.read_text())

    def move(coords: list) -> list:
        return [coords[0] + dx, *coords[1:]] if isinstance(coords[0], int | float) else [move(c) for c in coords]

    for feature in collection["features"]:
        feature["geometry"]["coordinates"] = move(feature["geometry"]["coordinates"])
    dst.write_text(json.dumps(collection))
    return dst


class Malicious:
    """Unpickling this runs code: it writes `marker`. Stands for a planted model, resume or index file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return exec, (f"open({self.marker!r}, 'w').write('code ran')",)


def plant_malicious(path: Path, marker: Path, **fields: object) -> Path:
    """A torch file at `path` whose payload (with `fields`, e.g. the landsight marker) runs code when unpickled."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**fields, "payload": Malicious(marker)}, path)
    return path


def bad_file(kind: str, path: Path, like: Path | None = None) -> Path:
    """A broken input at `path`: missing, empty, truncated (a third of `like`) or corrupt (random bytes)."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        assert like is not None
        data = like.read_bytes()
        path.write_bytes(data[:len(data) // 3])
    elif kind == "corrupt":
        path.write_bytes(random.Random(kind + path.name).randbytes(5000))
    elif kind != "missing":
        raise ValueError(kind)
    return path


@dataclasses.dataclass(frozen=True)
class Samples:
    """Valid inputs shared by the session (never written by a test: copy them first)."""

    image: Path       # 256 x 256 crop of the Atlanta image (uint16, 1 band, nodata 0)
    labels: Path      # the Atlanta OSM buildings (EPSG:32616)
    mask: Path        # labels rasterized onto `image`
    nan_image: Path   # `image` as float32 with a NaN block (top left 64 x 64) and a +Inf row (row 200)
    far_labels: Path  # `labels` moved 100 km east: no overlap with `image`
    empty_labels: Path  # a FeatureCollection without features
    scene: Path       # 128 x 128 crop of the Landsat-8 scene (4 bands), for the cloud gate
    chip: Path        # 32 x 32 crop of it: one chip


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    root = tmp_path_factory.mktemp("samples")
    image = crop(ATLANTA, root / "image.tif", Window(0, 0, 256, 256))
    nan_image = crop(ATLANTA, root / "nan-image.tif", Window(0, 0, 256, 256), dtype="float32")
    with rasterio.open(nan_image, "r+") as dst:
        data = dst.read(1)
        data[:64, :64] = np.nan
        data[200, :] = np.inf
        dst.write(data, 1)
    mask = root / "mask.tif"
    assert_succeeded(invoke("rasterize", image, BUILDINGS, "-o", mask, "--class-name", "building"))
    empty = root / "empty-labels.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    return Samples(image, BUILDINGS, mask, nan_image, shifted_labels(BUILDINGS, root / "far-labels.geojson", 1e5),
                   empty, crop(L8, root / "scene.tif", Window(0, 0, 128, 128)),
                   crop(L8, root / "chip.tif", Window(0, 0, 32, 32)))


@pytest.fixture(scope="session")
def seg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny building model (band 1 of the Atlanta image)."""
    out = tmp_path_factory.mktemp("seg") / "seg.pt"
    assert_succeeded(invoke("train", ATLANTA, BUILDINGS, "-o", out, "--class-name", "building", *TINY_SEG))
    return out


@pytest.fixture(scope="session")
def gate_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cloud gate (a classification model: classify predict/report, export and similar use it too)."""
    out = tmp_path_factory.mktemp("gate") / "gate.pt"
    assert_succeeded(invoke("cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "48",
                            "--band-names", "blue,green,red,nir", "--backbones", "mobilenetv3_small_050",
                            "--max-epochs", "1", "--budget", "60s", "--no-lr-search", "--model", "network", "-o", out))
    return out


@pytest.fixture(scope="session")
def prediction(seg_model: Path, samples: Samples, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`landsight predict` of the tiny building model over `samples.image`."""
    out = tmp_path_factory.mktemp("prediction") / "prediction.tif"
    assert_succeeded(invoke("predict", seg_model, samples.image, "-o", out, *SCHEME))
    return out


class Zygote:
    """Client of tests/faults/zygote.py: forks `landsight` commands from a process that imported everything once."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        # the landsight of this checkout, as in the test process; one thread per command: OpenMP threads spinning
        # on 2 shared cores made each forward pass 10x slower
        root = str(Path(__file__).parents[2])
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("zygote.py"))],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self._answer() == {"ready": True}

    def _answer(self) -> dict:
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise RuntimeError(f"the zygote died (exit {self.proc.wait()})")
        return json.loads(line)

    def _ask(self, **request: object) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def spawn(self, args: list[object], cwd: Path, log: Path, fsize: int | None = None,
              mounts: list[tuple[str, str, str]] = (), report: Path | None = None,
              env: dict[str, str] | None = None) -> int:
        """Start `landsight ARGS` in `cwd` (see zygote.py); returns its pid, also its process group."""
        return int(self._ask(op="spawn", args=[str(a) for a in args], cwd=str(cwd), log=str(log), fsize=fsize,
                             mounts=[list(m) for m in mounts], report=str(report) if report else None,
                             env=env or {})["pid"])

    def wait(self, pid: int) -> int:
        """Exit status of child `pid` (negative: the signal that killed it)."""
        return int(self._ask(op="wait", pid=pid)["rc"])

    def run(self, args: list[object], cwd: Path, **kw: object) -> Outcome:
        """Run to the end; the outcome's output is the child's stdout and stderr."""
        log = self.logs / f"{random.getrandbits(32):08x}.log"
        rc = self.wait(self.spawn(args, cwd, log, **kw))
        output = log.read_text(errors="replace")
        log.unlink()
        return Outcome(rc, output)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def zygote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    z = Zygote(tmp_path_factory.mktemp("zygote-logs"))
    yield z
    z.close()


def dead_pid() -> int:
    """The pid of a process that has exited (for temporaries "left by a killed run")."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def live_pid() -> int:
    """This test process's pid: a run that is still going."""
    return os.getpid()


@pytest.fixture(scope="session")
def similarity_index(gate_model: Path, samples: Samples, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`landsight similar index` of the Landsat-8 crop's 32 px windows with the gate's backbone."""
    out = tmp_path_factory.mktemp("index") / "index.npz"
    assert_succeeded(invoke("similar", "index", gate_model, samples.scene, "-o", out))
    return out


class Kit:
    """What a fault case works with: the session's samples, models built on first use, and an empty `out` folder
    under the test's tmp_path for the command's outputs."""

    def __init__(self, request: pytest.FixtureRequest, tmp: Path, samples: Samples) -> None:
        self._request = request
        self.tmp = tmp
        self.s = samples
        self.out = tmp / "out"
        self.out.mkdir()

    @property
    def seg(self) -> Path:
        return self._request.getfixturevalue("seg_model")

    @property
    def gate(self) -> Path:
        return self._request.getfixturevalue("gate_model")

    @property
    def pred(self) -> Path:
        return self._request.getfixturevalue("prediction")

    @property
    def index(self) -> Path:
        return self._request.getfixturevalue("similarity_index")

    def outputs(self) -> list[str]:
        """Every file under `out` (a refused command leaves none)."""
        return sorted(str(p.relative_to(self.out)) for p in self.out.rglob("*") if not p.is_dir())


@pytest.fixture
def kit(request: pytest.FixtureRequest, tmp_path: Path, samples: Samples) -> Kit:
    return Kit(request, tmp_path, samples)
