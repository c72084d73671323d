"""Safe outputs: what --overwrite may replace, inputs never written, stale temporaries, failed writes."""

import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from landsight.errors import OutputError, OutputExistsError
from landsight.imagery.io import create_raster
from landsight.outputs import (
    OUTPUT_MARKER,
    atomic_path,
    check_output,
    guard_inputs,
    output_folder,
    register_input,
    remove_stale_temporaries,
)


def test_file_replaces_file_only_with_overwrite(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(OutputExistsError, match="`overwrite=True`"):
        check_output(out, overwrite=False)
    with atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("new")
    assert out.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_file_output_never_replaces_a_folder(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "precious.tif").write_text("x")
    with pytest.raises(OutputExistsError, match="is a folder"):
        check_output(folder, overwrite=True)
    assert (folder / "precious.tif").exists()


def test_folder_replaced_only_when_a_landsight_output(tmp_path):
    mine = tmp_path / "report"
    with atomic_path(mine, directory=True) as tmp:
        (tmp / "metrics.json").write_text("{}")
    assert (mine / OUTPUT_MARKER).is_file()
    with atomic_path(mine, overwrite=True, directory=True) as tmp:
        (tmp / "metrics.json").write_text("{}")
    theirs = tmp_path / "photos"
    theirs.mkdir()
    (theirs / "x.jpg").write_text("x")
    with pytest.raises(OutputExistsError, match=OUTPUT_MARKER), atomic_path(theirs, True, directory=True):
        pass
    assert (theirs / "x.jpg").exists()


def test_never_the_working_directory_or_a_parent(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / OUTPUT_MARKER).write_text("{}")
    monkeypatch.chdir(work)
    for target in (".", "..", str(tmp_path)):
        with pytest.raises(OutputExistsError, match="working directory"):
            check_output(target, overwrite=True, directory=True)


def test_inputs_and_folders_holding_them_are_refused(tmp_path):
    image = tmp_path / "in" / "image.tif"
    image.parent.mkdir()
    image.write_bytes(b"raster")
    (image.parent / OUTPUT_MARKER).write_text("{}")
    with guard_inputs():
        register_input(image)
        for target in (image, image.parent):
            with pytest.raises(OutputExistsError, match="never written"):
                check_output(target, overwrite=True, directory=target.is_dir())
    check_output(image, overwrite=True)  # outside the guard nothing is registered
    assert image.read_bytes() == b"raster"


def test_resumable_folder_refuses_foreign_content_and_inputs(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="non-empty"):
        output_folder(foreign)
    with pytest.raises(OutputExistsError, match="holds the input"):
        output_folder(tmp_path, inputs=[foreign / "notes.txt"])
    out = output_folder(tmp_path / "new")
    (out / "result.tif").write_text("x")
    assert output_folder(out) == out  # a landsight folder is reused (resume)


def test_failed_block_leaves_nothing(tmp_path):
    out = tmp_path / "a.txt"
    out.write_text("good")
    with pytest.raises(RuntimeError), atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    pid = int(dead.stdout)
    out = tmp_path / "pred.tif"
    stale = [tmp_path / f".pred.tif.{pid}-abc.part.tif", tmp_path / f".pred.tif.{pid}-abc.part.tif.strips.tif"]
    live = tmp_path / f".pred.tif.{os.getpid()}-xyz.part.tif"
    other = tmp_path / f".prediction.tif.{pid}-abc.part.tif"
    for path in (*stale, live, other):
        path.write_text("x")
    assert sorted(remove_stale_temporaries(tmp_path, out.name)) == sorted(stale)
    assert live.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path) == [other] and live.exists()


def _profile(width: int = 512) -> dict:
    return {"driver": "GTiff", "width": width, "height": width, "count": 1, "dtype": "uint8", "crs": "EPSG:32617",
            "transform": from_origin(0, width, 1, 1), "compress": "deflate", "tiled": True, "blockxsize": 256,
            "blockysize": 256}


def test_raster_write_verified(tmp_path):
    path = tmp_path / "ok.tif"
    with create_raster(path, _profile()) as dst:
        dst.write(np.ones((1, 512, 512), np.uint8))
    with rasterio.open(path) as src:
        assert src.read().sum() == 512 * 512


FULL_DISK = """
import resource, signal, sys
import numpy as np
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from landsight.errors import OutputError
from landsight.imagery.io import create_raster
from landsight.outputs import atomic_path
from tests.test_outputs import _profile
try:
    with atomic_path(sys.argv[1], overwrite=True) as tmp, create_raster(tmp, _profile()) as dst:
        dst.write(np.zeros((1, 512, 512), np.uint8))
except OutputError as exc:
    print("OutputError:", exc)
    sys.exit(2)
"""


@pytest.mark.parametrize("limit", [0, 300, 600])
def test_full_disk_while_closing_raises_and_keeps_the_old_file(tmp_path, limit):
    """A tiny compressed raster fails only while GDAL flushes it at close, which GDAL reports as a log message."""
    out = tmp_path / "mask.tif"
    out.write_bytes(b"previous good mask")
    proc = subprocess.run([sys.executable, "-c", FULL_DISK.format(limit=limit), str(out)], capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.dirname(__file__)), check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "OutputError" in proc.stdout and str(out) in proc.stdout and "Traceback" not in proc.stderr
    assert out.read_bytes() == b"previous good mask"
    assert [p.name for p in tmp_path.iterdir()] == ["mask.tif"]


def test_output_error_is_an_oserror():
    assert issubclass(OutputError, OSError)
