"""Full disks and read-only folders, in real processes (forked by the zygote): exit 2 naming the output, no traceback,
nothing under the final name (or the previous good file unchanged), no temporary left behind.

- a file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored): every write past FSIZE bytes fails with EFBIG; works anywhere;
- a full disk: a 4 kB tmpfs mounted over the output folder in the child's own mount namespace (ENOSPC);
- a read-only folder: chmod 0o555 when not root; as root (chmod does not stop root) a read-only bind mount in the
  child's own mount namespace (EROFS). Mount cases skip where the machine refuses private mounts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import pytest

from tests.faults.conftest import (
    ATLANTA,
    SCHEME,
    Kit,
    Outcome,
    Zygote,
    assert_refused,
    leftovers,
    read_raster,
)
from tests.faults.zygote import MOUNT_FAILED

FSIZE = 2048
"""File-size limit in bytes: below every output used here, above what the commands print."""

Args = Callable[[Kit], list[object]]


def run(zygote: Zygote, kit: Kit, args: list[object], **kw: object) -> Outcome:
    outcome = zygote.run(args, kit.tmp, **kw)
    if outcome.rc == MOUNT_FAILED:
        pytest.skip(f"this machine refuses private mounts: {outcome.output.strip()}")
    return outcome


FULL_DISK: dict[str, tuple[str, Args]] = {
    "rasterize": ("mask.tif", lambda k: ["rasterize", ATLANTA, k.s.labels, "-o", k.out / "mask.tif"]),
    "predict": ("pred.tif", lambda k: ["predict", k.seg, k.s.image, "-o", k.out / "pred.tif", "--probabilities",
                                       *SCHEME]),
    "vectorize": ("polygons.geojson", lambda k: ["vectorize", k.s.mask, "-o", k.out / "polygons.geojson"]),
    "evaluate": ("evaluation", lambda k: ["evaluate", k.pred, k.s.labels, "-o", k.out / "evaluation"]),
    "compare": ("comparison", lambda k: ["compare", k.pred, k.s.labels, "-o", k.out / "comparison"]),
    "train": ("m.pt", lambda k: ["train", k.s.image, k.s.labels, "-o", k.out / "m.pt", "--class-name", "building",
                                 "--arch", "fpn", "--encoder", "mobilenetv3_small_050", "--weights", "none",
                                 "--chip-size", "64", "--epochs", "1", "--chips-per-epoch", "4"]),
    "similar-index": ("index.npz", lambda k: ["similar", "index", k.gate, k.s.scene, "-o", k.out / "index.npz"]),
}


@pytest.mark.parametrize("command", FULL_DISK)
def test_file_size_limit(command: str, kit: Kit, zygote: Zygote) -> None:
    """The issue's silent success: on a full disk `rasterize` wrote a 0-byte mask, printed "wrote" and exited 0."""
    name, args = FULL_DISK[command]
    outcome = run(zygote, kit, args(kit), fsize=FSIZE)
    assert_refused(outcome, name)
    assert "wrote" not in outcome.output
    assert kit.outputs() == [], kit.outputs()


def test_file_size_limit_keeps_the_previous_output(kit: Kit, zygote: Zygote) -> None:
    """With --overwrite, a failed write leaves the earlier good mask as it was."""
    mask = kit.out / "mask.tif"
    assert run(zygote, kit, ["rasterize", ATLANTA, kit.s.labels, "-o", mask]).rc == 0
    good = mask.read_bytes()
    assert len(good) > FSIZE
    outcome = run(zygote, kit, ["rasterize", ATLANTA, kit.s.labels, "-o", mask, "--overwrite",
                                "--class-name", "building"], fsize=FSIZE)
    assert_refused(outcome, mask)
    assert mask.read_bytes() == good
    assert kit.outputs() == ["mask.tif"]


@pytest.mark.parametrize("command", ["rasterize", "predict"])
def test_full_disk(command: str, kit: Kit, zygote: Zygote) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    name, args = FULL_DISK[command]
    report = kit.tmp / "tmpfs-listing.json"
    outcome = run(zygote, kit, args(kit), mounts=[("tmpfs", str(kit.out), "size=4k")], report=report)
    assert_refused(outcome, name)
    assert json.loads(report.read_text()) == {str(kit.out): []}


@pytest.fixture
def read_only(kit: Kit) -> Iterator[dict[str, object]]:
    """Spawn options that make `kit.out` read-only for the command."""
    if os.geteuid() == 0:
        yield {"mounts": [("ro", str(kit.out), "")]}
        return
    kit.out.chmod(0o555)
    yield {}
    kit.out.chmod(0o755)


READ_ONLY: dict[str, tuple[str, Args]] = {
    **FULL_DISK,
    "dataset-check": ("report.json", lambda k: ["dataset", "check", k.s.image, k.s.labels, "--json",
                                                k.out / "report.json"]),
    "change": ("change", lambda k: ["change", k.s.image, k.s.nan_image, "-o", k.out / "change"]),
    "pipeline-run": ("pipeline", lambda k: ["pipeline", "run", "--input", k.s.image, "--model", k.seg, "-o",
                                            k.out / "pipeline", *SCHEME]),
    "classify-predict": ("classes.csv", lambda k: ["classify", "predict", k.gate, k.s.scene, "-o",
                                                   k.out / "classes.csv"]),
}


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_output_folder(command: str, kit: Kit, zygote: Zygote, read_only: dict[str, object]) -> None:
    name, args = READ_ONLY[command]
    outcome = run(zygote, kit, args(kit), **read_only)
    assert_refused(outcome, name)
    assert kit.outputs() == []


def test_read_only_folder_is_really_read_only(kit: Kit, zygote: Zygote, read_only: dict[str, object]) -> None:
    """The setup works: `rasterize` into a writable folder succeeds, into the read-only one it cannot."""
    assert run(zygote, kit, ["rasterize", kit.s.image, kit.s.labels, "-o", kit.tmp / "mask.tif"]).rc == 0
    read_raster(kit.tmp / "mask.tif")
    assert run(zygote, kit, ["rasterize", kit.s.image, kit.s.labels, "-o", kit.out / "mask.tif"], **read_only).rc != 0
    assert not leftovers(kit.tmp)
