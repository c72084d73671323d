"""The Beam pipeline and the Flink engine against `landsight predict`, on a dozen crops of the shipped rasters."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

pytest.importorskip("apache_beam")

from landsight.cli.main import cli
from landsight.errors import ConfigError, MissingExtraError
from landsight.imagery.bands import BandSpec
from landsight.imagery.windows import aligned_window_rows
from landsight.pipeline import JobConfig, expand_inputs, run_pipeline
from landsight.pipeline.stages import check_unique_keys, raster_key
from landsight.predict.stats import window_cores
from tests.conftest import DATA, SAMPLE

SCHEME = ["--window", "256", "--overlap", "32", "--batch-size", "2", "--bands", "1"]  # band 1 of every raster
SOURCES = {"atl": SAMPLE / "atlanta.tif", "nc": DATA / "nc-landcover" / "landsat7-2000.tif",
           "s2": DATA / "sentinel2-coast" / "s2-crop.tif"}
CROPS = [(0, 0, .5, .5), (.5, 0, .5, .5), (0, .5, 1, .5), (.15, .1, .4, .45)]  # fractions: col, row, width, height


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def config(model, out, **kw):
    return JobConfig(str(model), str(out), window=256, overlap=32, batch_size=2, bands=(1,), **kw)


def crop(src_path, dst_path, fractions):
    with rasterio.open(src_path) as src:
        c, r, w, h = (int(f * n) for f, n in zip(fractions, (src.width, src.height) * 2, strict=True))
        window = Window(c, r, w, h)
        profile = {**src.profile, "width": w, "height": h, "transform": src.window_transform(window), "tiled": False}
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(src.read(window=window))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The tiniest building model: resnet18 from scratch, one epoch of 8 chips of 64 px (reads band 1)."""
    out = tmp_path_factory.mktemp("model") / "tiny.pt"
    result = run("train", SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson", "-o", out, "--class-name",
                 "building", "--encoder", "resnet18", "--weights", "none", "--chip-size", "64", "--epochs", "1",
                 "--chips-per-epoch", "8", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Twelve rasters: four crops each of the Atlanta (1 band), NC Landsat (6) and Sentinel-2 (4) samples."""
    folder = tmp_path_factory.mktemp("inputs")
    for name, path in SOURCES.items():
        for i, fractions in enumerate(CROPS):
            crop(path, folder / f"{name}{i}.tif", fractions)
    return folder


@pytest.fixture(scope="module")
def expected(model, inputs, tmp_path_factory):
    """`landsight predict` output for every input."""
    folder = tmp_path_factory.mktemp("predict")
    for image in sorted(inputs.glob("*.tif")):
        assert run("predict", model, image, "-o", folder / image.name, *SCHEME).exit_code == 0
    return folder


@pytest.fixture(scope="module")
def direct(model, inputs, tmp_path_factory):
    """One uninterrupted DirectRunner run over the twelve inputs: (out dir, summary)."""
    out = tmp_path_factory.mktemp("direct")
    return out, run_pipeline(str(inputs / "*.tif"), config(model, out))


def read(path):
    with rasterio.open(path) as src:
        return src.read()


def assert_masks_equal(expected, out, names):
    assert names
    for name in names:
        assert np.array_equal(read(expected / name), read(out / name)), name


def test_direct_runner_equals_predict(direct, expected, inputs):
    out, summary = direct
    assert len(summary["done"]) == 12 and not summary["failed"] and not summary["missing"]
    assert_masks_equal(expected, out, [p.name for p in inputs.glob("*.tif")])
    with rasterio.open(out / "atl2.tif") as mask, rasterio.open(expected / "atl2.tif") as ref:
        assert mask.tags()["model_sha256"] == ref.tags()["model_sha256"] and mask.profile["tiled"]
        transform, (height, width) = mask.transform, mask.shape
    features = [json.loads(line) for line in (out / "atl2.geojsonl").read_text().splitlines()]
    assert features and {f["properties"]["class"] for f in features} <= {"building"}
    rows = (out / "atl2.stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[-3:] == ["nodata_m2", "background_m2", "building_m2"] and len(rows) - 1 == 3 * 2
    areas = sum(float(v) for row in rows[1:] for v in row.split(",")[-3:])
    assert areas == pytest.approx(width * height * abs(transform.a * transform.e), rel=1e-6)
    assert all(",clear," in row for row in rows[1:])
    assert json.loads((out / "atl2.done.json").read_text())["windows"] == 6
    assert not any((out / ".spill").iterdir())  # spilled probabilities are removed once stitched


def test_window_probabilities_wait_on_disk_not_in_engine_state(model, inputs, tmp_path):
    """What the engine collects per raster until stitching is file names, not a raster's worth of probabilities."""
    import pickle

    from landsight.pipeline import stages

    job = config(model, tmp_path)
    model_file = stages.load_model(job)
    task = stages.plan_tasks(job, str(inputs / "atl2.tif"), model_file)[0]
    result = stages.infer(stages.read_task(task, model_file), stages.load_predictor(job), tmp_path)
    spilled = [w.load().probabilities for w in result.results]
    assert len(spilled) == 2 and all(p.shape == (2, 256, 256) and p.dtype == np.float32 for p in spilled)
    assert len(pickle.dumps(result)) < 0.05 * sum(p.nbytes for p in spilled)
    assert sorted(p.name for p in Path(stages.spill_dir(tmp_path, "atl2")).iterdir()) == sorted(
        f"{int(w.window.row_off)}_{int(w.window.col_off)}.npy" for w in result.results)
    assert stages.clean_partials(tmp_path) == 1 and not Path(stages.spill_dir(tmp_path, "atl2")).exists()


def test_rerun_skips_completed_outputs(direct, model, inputs):
    out, _ = direct
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    summary = run_pipeline(str(inputs), config(model, out))
    assert len(summary["done"]) == 12
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
"""127.0.0.1, ::1 and ::ffff:127.0.0.1 as /proc/net/tcp(6) writes them."""


def listening_addresses(port):
    """Local addresses of the sockets listening on TCP `port` (Linux /proc/net/tcp and tcp6, hex-encoded)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                found.add(address)
    return found


def test_portable_runner_equals_predict(model, inputs, expected, tmp_path):
    """PortableRunner against Beam's own job service (local_job_service_main run with its documented flags, no
    patching); its job API listens on the loopback interface only."""
    from landsight.pipeline.jobservice import local_job_service

    with local_job_service(timeout=60) as endpoint:
        assert endpoint.startswith("localhost:")
        if os.path.exists("/proc/net/tcp"):
            addresses = listening_addresses(int(endpoint.split(":")[1]))
            assert addresses and addresses <= LOOPBACK, addresses
        summary = run_pipeline(str(inputs / "*.tif"), config(model, tmp_path), "PortableRunner",
                               [f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"])
    assert len(summary["done"]) == 12
    assert_masks_equal(expected, tmp_path, [p.name for p in inputs.glob("*.tif")])


@pytest.mark.slow  # about 60 s on 2 busy cores: each worker process imports torch and loads the model
def test_multi_process_direct_runner_gives_the_same_outputs(direct, model, inputs, tmp_path):
    """Beam's DirectRunner with two worker processes writes the same bytes as the default run."""
    names = ["atl2", "nc1", "s23"]
    summary = run_pipeline([str(inputs / f"{n}.tif") for n in names], config(model, tmp_path), beam_args=[
        "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert len(summary["done"]) == 3 and not summary["failed"]
    reference, _ = direct
    for name in names:
        for suffix in ("tif", "geojsonl", "stats.csv"):
            assert (tmp_path / f"{name}.{suffix}").read_bytes() == (reference / f"{name}.{suffix}").read_bytes()


def test_corrupt_inputs_go_to_the_dead_letter(model, inputs, expected, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("atl3.tif", "nc3.tif", "s23.tif"):
        shutil.copy(inputs / name, folder / name)
    (folder / "garbage.tif").write_bytes(os.urandom(5000))
    data = (inputs / "atl2.tif").read_bytes()
    (folder / "truncated.tif").write_bytes(data[:len(data) // 3])
    out = tmp_path / "out"
    result = run("pipeline", "run", "--input", folder, "--model", model, "-o", out, *SCHEME)
    assert result.exit_code == 1, result.output
    assert "3 raster(s) done, 2 failed" in result.output
    letters = sorted(p.name for p in (out / "dead-letter").iterdir())
    assert letters == ["garbage.PlanRasters.json", "truncated.PlanRasters.json"]
    record = json.loads((out / "dead-letter" / "garbage.PlanRasters.json").read_text())
    assert record["image"].endswith("garbage.tif") and "RasterError" in record["error"]
    assert "cannot open" in record["error"] and "Traceback" in record["traceback"]
    assert "RasterError" in json.loads((out / "dead-letter" / "truncated.PlanRasters.json").read_text())["error"]
    assert_masks_equal(expected, out, ["atl3.tif", "nc3.tif", "s23.tif"])
    assert not list(out.glob("garbage.*")) and not list(out.glob("truncated.*"))


def test_killed_run_resumes_to_the_same_outputs(model, inputs, direct, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-c", "from landsight.cli.main import cli; cli()", "-q", "pipeline", "run", "--input",
               str(inputs / "*.tif"), "--model", str(model), "-o", str(out), *SCHEME]
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(list(out.glob("*.done.json"))) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finished = len(list(out.glob("*.done.json")))
    assert 2 <= finished < 12, f"the run was not killed midway ({finished} rasters done)"
    for mask in out.glob("[!.]*.tif"):  # whatever is in place is whole: written under a temporary name, renamed
        read(mask)
    summary = run_pipeline(str(inputs / "*.tif"), config(model, out))
    assert len(summary["done"]) == 12 and not list(out.glob(".*.part*")) and not any((out / ".spill").iterdir())
    reference, _ = direct
    for path in sorted(reference.iterdir()):
        if path.suffix == ".tif":
            assert np.array_equal(read(path), read(out / path.name)), path.name
        elif path.name.endswith((".geojsonl", ".stats.csv")):
            assert path.read_bytes() == (out / path.name).read_bytes(), path.name


def test_flink_engine_gives_identical_masks(model, inputs, expected, tmp_path):
    from landsight.pipeline.flink import flink_python, run_flink

    try:
        flink_python()
    except MissingExtraError as exc:
        pytest.skip(f"no Flink environment ({exc}); create it with scripts/flink-env.sh")
    summary = run_flink(str(inputs / "*.tif"), config(model, tmp_path), timeout=300)
    assert len(summary["done"]) == 12, summary
    assert_masks_equal(expected, tmp_path, [p.name for p in inputs.glob("*.tif")])


def test_streaming_picks_up_a_dropped_file(model, inputs, expected, tmp_path):
    watched, out = tmp_path / "watched", tmp_path / "out"
    watched.mkdir()

    def drop():
        time.sleep(2)
        shutil.copy(inputs / "s22.tif", watched / ".s22.tif.copying")
        os.replace(watched / ".s22.tif.copying", watched / "s22.tif")

    dropper = threading.Thread(target=drop)
    dropper.start()
    started = time.monotonic()
    summary = run_pipeline(str(watched), config(model, out), streaming=True, stop_after=12, poll_interval=0.5,
                           window_seconds=2)
    dropper.join()
    assert time.monotonic() - started < 60
    assert summary["done"] == [str(watched / "s22.tif")]
    assert_masks_equal(expected, out, ["s22.tif"])
    assert (out / "s22.geojsonl").exists() and (out / "s22.stats.csv").exists()


class StandInGate:
    """Test double with the contract of landsight.classify.gate.CloudGate: windows brighter than a threshold
    (mean raw value of band 1) are 'cloudy'."""

    def __init__(self, threshold):
        self.bands = BandSpec((1,), ("b1",))
        self.threshold = threshold

    def cloudy(self, images):
        return [float(np.mean(image)) > self.threshold for image in images]


def test_cloud_gate_drops_cloudy_windows(model, inputs, expected, tmp_path):
    image = inputs / "atl2.tif"
    rows = aligned_window_rows(600, 450, 256, 32)
    with rasterio.open(image) as src:
        means = {(int(w.col_off), int(w.row_off)): float(src.read(1, window=w).mean()) for r in rows for w in r}
    threshold = float(np.median(list(means.values())))
    cloudy = {k for k, v in means.items() if v > threshold}
    assert 0 < len(cloudy) < len(means)
    summary = run_pipeline(str(image), config(model, tmp_path), gate=StandInGate(threshold))
    assert len(summary["done"]) == 1
    mask, ref = read(tmp_path / "atl2.tif")[0], read(expected / "atl2.tif")[0]
    in_cloud = np.zeros_like(mask, dtype=bool)
    for col, row in cloudy:
        in_cloud[row:row + 256, col:col + 256] = True
    assert (mask[in_cloud] == 255).all()
    assert np.array_equal(mask[~in_cloud], ref[~in_cloud])
    rows_csv = [line.split(",") for line in (tmp_path / "atl2.stats.csv").read_text().splitlines()[1:]]
    assert {(int(r[1]), int(r[2])) for r in rows_csv if r[-4] == "cloudy"} == cloudy
    marker = json.loads((tmp_path / "atl2.done.json").read_text())
    assert marker["cloudy"] == len(cloudy) and marker["job"]["gate_sha256"].endswith("StandInGate")


def test_cloud_model_must_be_a_gate(model, inputs, tmp_path):
    """--cloud-model loads landsight.classify.gate.CloudGate lazily; a segmentation model is refused with exit 2."""
    result = run("pipeline", "run", "--input", inputs / "s20.tif", "--model", model, "--cloud-model", model,
                 "-o", tmp_path)
    assert result.exit_code == 2
    assert "classification model" in result.output or "landsight.classify.gate" in result.output


def test_expand_inputs(inputs, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two rasters\n{inputs / 'atl0.tif'}\n{inputs / 'nc1.tif'}\n")
    assert len(expand_inputs(str(inputs))) == 12
    assert expand_inputs(f"{inputs}/s2*.tif") == [str(inputs / f"s2{i}.tif") for i in range(4)]
    assert expand_inputs([f"{inputs / 'atl0.tif'},{inputs / 'atl1.tif'}", f"@{listing}"]) == [
        str(inputs / "atl0.tif"), str(inputs / "atl1.tif"), str(inputs / "nc1.tif")]
    assert expand_inputs("/vsicurl/https://example.com/a.tif") == ["/vsicurl/https://example.com/a.tif"]
    with pytest.raises(ConfigError, match="matches no file"):
        expand_inputs(f"{inputs}/*.jp2")


def test_output_names_must_not_collide():
    assert raster_key("/vsicurl/https://host/data/scene 1.tif?x=1") == "scene_1"
    assert raster_key("/in/...tif") == "__" and raster_key("/in/.hidden.tif") == "_hidden"
    with pytest.raises(ConfigError, match="rename one"):
        check_unique_keys(["/a/x.tif", "/b/x.tif"])
    with pytest.raises(ConfigError, match="rename one"):
        check_unique_keys(["/a/X.tif", "/a/x.tif"])  # one file on case-insensitive file systems


def test_dead_letters_belong_to_one_key(tmp_path):
    from landsight.pipeline import stages

    stages.dead_letter(tmp_path, "/in/a.tif", "PlanRasters", "bad a")
    stages.dead_letter(tmp_path, "/in/a.b.tif", "ReadWindows", "bad a.b")
    assert [Path(p).name for p in stages.dead_letters(tmp_path, "a")] == ["a.PlanRasters.json"]
    summary = stages.summarize(tmp_path, ["/in/a.tif", "/in/a.b.tif"])
    assert [f["error"] for f in summary["failed"]] == ["bad a", "bad a.b"]


def test_unsafe_stems_stay_inside_the_output_folder(model, inputs, expected, tmp_path):
    """`...tif` has the stem `..`: it once made the spill folder the output folder, and removing the spill
    deleted the other inputs' finished outputs."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(inputs / "atl2.tif", folder / "...tif")
    shutil.copy(inputs / "s20.tif", folder / "s20.tif")
    (tmp_path / "keep.txt").write_text("not an output")
    around = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    result = run("pipeline", "run", "--input", folder / "...tif", "--input", folder / "s20.tif", "--model", model,
                 "-o", out, *SCHEME)
    assert result.exit_code == 0, result.output
    assert "2 raster(s) done, 0 failed" in result.output
    for key in ("__", "s20"):
        assert all((out / f"{key}.{suffix}").is_file() for suffix in ("tif", "geojsonl", "stats.csv", "done.json"))
    assert np.array_equal(read(out / "__.tif"), read(expected / "atl2.tif"))
    assert_masks_equal(expected, out, ["s20.tif"])
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if out not in (p, *p.parents)} == around


def test_same_stem_inputs_are_refused_before_any_work(model, inputs, tmp_path):
    for name in ("a/x.tif", "b/x.tif", "c/X.tif"):
        (tmp_path / name).parent.mkdir()
        shutil.copy(inputs / "s20.tif", tmp_path / name)
    for first, second in (("a/x.tif", "b/x.tif"), ("a/x.tif", "c/X.tif")):
        out = tmp_path / "out"
        result = run("pipeline", "run", "--input", tmp_path / first, "--input", tmp_path / second, "--model", model,
                     "-o", out, *SCHEME)
        assert result.exit_code == 2, result.output
        assert str(tmp_path / first) in result.output and str(tmp_path / second) in result.output
        assert "rename one" in result.output and "Traceback" not in result.output
        assert not list(out.glob("[!.]*"))  # no output, no dead letter


def test_window_cores_partition_the_raster():
    for width, height, size, overlap in [(600, 900, 256, 32), (489, 443, 128, 64), (100, 50, 1024, 64)]:
        cover = np.zeros((height, width), dtype=int)
        for _, core in window_cores(aligned_window_rows(width, height, size, overlap), width, height):
            r0, c0 = int(core.row_off), int(core.col_off)
            cover[r0:r0 + int(core.height), c0:c0 + int(core.width)] += 1
        assert (cover == 1).all()


def test_flink_engine_without_its_environment_is_explained(model, inputs, tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSIGHT_FLINK_PYTHON", str(tmp_path / "missing" / "python"))
    result = run("pipeline", "run", "--engine", "flink", "--input", inputs / "s20.tif", "--model", model, "-o",
                 tmp_path / "out")
    assert result.exit_code == 2 and "scripts/flink-env.sh" in result.output
