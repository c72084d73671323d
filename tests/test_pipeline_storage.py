"""Object storage: the Beam pipeline reads rasters from and writes its outputs to an S3 server on 127.0.0.1 (moto in
server mode, started here), atomically, resuming an interrupted run, and never writing the credentials anywhere."""

import json
import logging
import uuid

import numpy as np
import pytest
import rasterio

pytest.importorskip("apache_beam")
pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from moto.server import ThreadedMotoServer

from landsight.errors import ConfigError, OutputError, OutputExistsError
from landsight.pipeline import JobConfig, expand_inputs, run_pipeline, stages, storage
from tests.conftest import SAMPLE
from tests.test_pipeline import crop, run

SECRET = f"secret-{uuid.uuid4().hex}"
BUCKET = "landsight"
CROPS = [(0, 0, .5, .4), (.5, .3, .5, .4), (.1, .6, .6, .4)]  # fractions of the Atlanta sample: col, row, w, h


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 with an empty bucket; the environment a user sets for GDAL and boto (module-wide)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "landsight-test", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
           "AWS_S3_ENDPOINT": f"{host}:{port}", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
                patch.delenv(name, raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            fs, _ = storage._filesystem(f"s3://{BUCKET}")
            fs.mkdir(BUCKET)
            yield fs
    finally:
        server.stop()


def keys(fs, prefix):
    return sorted(k.split("/", 1)[1] for k in fs.find(f"{BUCKET}/{prefix}"))


def test_s3_options_follow_gdal_variables():
    plain = {"AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}
    assert storage.s3_options(plain) == {"use_listings_cache": False, "endpoint_url": "http://127.0.0.1:9000",
                                         "config_kwargs": {"s3": {"addressing_style": "path"}}}
    assert storage.s3_options({"AWS_S3_ENDPOINT": "minio:9000"})["endpoint_url"] == "https://minio:9000"
    assert "endpoint_url" not in storage.s3_options({**plain, "AWS_ENDPOINT_URL_S3": "http://other:1"})
    assert storage.s3_options({}) == {"use_listings_cache": False}


def test_objects_are_written_under_a_temporary_key_then_copied(s3, monkeypatch):
    url = f"s3://{BUCKET}/atomic/a.json"
    seen = []
    original = type(s3)._cp_file

    async def copy(self, source, target, **kw):  # what a reader could list just before the final key appears
        seen.append((source, target, sorted(await self._find(f"{BUCKET}/atomic"))))
        return await original(self, source, target, **kw)

    monkeypatch.setattr(type(s3), "_cp_file", copy)
    storage.write_text(url, '{"a": 1}')
    (source, target, before), = seen
    assert target == f"{BUCKET}/atomic/a.json" and before == [source]
    assert source.startswith(f"{BUCKET}/atomic/.a.json.") and ".part" in source
    assert keys(s3, "atomic") == ["atomic/a.json"] and storage.read_text(url) == '{"a": 1}'


def test_a_failed_write_leaves_no_object(s3):
    url = f"s3://{BUCKET}/failed/mask.tif"
    with pytest.raises(RuntimeError), storage.write_via(url) as local:
        local.write_bytes(b"half a COG")
        raise RuntimeError("the writer died")
    assert not storage.exists(url) and keys(s3, "failed") == []
    s3.pipe(f"{BUCKET}/failed/.mask.tif.4242-abcdef.part.tif", b"left by a killed upload")
    s3.pipe(f"{BUCKET}/failed/.hidden", b"not a temporary of ours")
    assert storage.remove_temporaries(f"s3://{BUCKET}/failed") == 1
    assert keys(s3, "failed") == ["failed/.hidden"]


def test_output_prefix_must_be_empty_or_landsight_output(s3):
    storage.make_output_folder(f"s3://{BUCKET}/fresh", [])
    assert keys(s3, "fresh") == ["fresh/.landsight-output"]
    storage.make_output_folder(f"s3://{BUCKET}/fresh", [])  # reused to resume
    s3.pipe(f"{BUCKET}/foreign/data.csv", b"someone else's")
    with pytest.raises(OutputExistsError, match="`out_dir`"):
        storage.make_output_folder(f"s3://{BUCKET}/foreign", [])


def test_missing_bucket_is_explained(s3):
    with pytest.raises(OutputError, match=r"no-such-bucket.*check the bucket name"):
        storage.make_output_folder("s3://no-such-bucket/out", [])
    with pytest.raises(ConfigError, match="matches no raster object; check the bucket"):
        expand_inputs("s3://no-such-bucket/in/*.tif")


def test_object_inputs_become_gdal_paths(s3):
    for name in ("b.tif", "a.tif", "notes.txt"):
        s3.pipe(f"{BUCKET}/listing/{name}", b"x")
    expected = [f"/vsis3/{BUCKET}/listing/a.tif", f"/vsis3/{BUCKET}/listing/b.tif"]
    assert expand_inputs(f"s3://{BUCKET}/listing/") == expected
    assert expand_inputs(f"s3://{BUCKET}/listing/*.tif") == expected
    assert expand_inputs(f"/vsis3/{BUCKET}/listing/*.tif") == expected
    assert expand_inputs(f"s3://{BUCKET}/listing/b.tif") == [expected[1]]


def test_flink_engine_refuses_object_store_outputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("pipeline", "run", "--engine", "flink", "--input", SAMPLE / "atlanta.tif", "--model",
                 SAMPLE / "atlanta.tif", "-o", f"s3://{BUCKET}/out")
    assert result.exit_code == 2 and "--engine beam" in result.output and not (tmp_path / "s3:").exists()


@pytest.fixture(scope="module")
def local_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    for i, fractions in enumerate(CROPS):
        crop(SAMPLE / "atlanta.tif", folder / f"atl{i}.tif", fractions)
    return folder


def job(model, out):
    return JobConfig(str(model), str(out), window=256, overlap=32, batch_size=2)


@pytest.mark.slow
def test_pipeline_reads_and_writes_s3_like_a_local_run(s3, atlanta_model, local_inputs, tmp_path, monkeypatch,
                                                        caplog):
    """S3 inputs to a local folder (the reference), then S3 to S3: once interrupted by a failing stage (and a
    leftover temporary and spill from a killed upload), then resumed; the rerun skips what was complete. Masks,
    polygons and stats come out byte for byte as in the local folder; a local input gives the same pixels."""
    caplog.set_level(logging.DEBUG, logger="landsight")
    for image in sorted(local_inputs.glob("*.tif")):
        s3.put_file(str(image), f"{BUCKET}/in/{image.name}")
    reference, local_run = tmp_path / "reference", tmp_path / "local"
    assert len(run_pipeline(f"s3://{BUCKET}/in/*.tif", job(atlanta_model, reference))["done"]) == 3
    assert run_pipeline(str(local_inputs / "atl0.tif"), job(atlanta_model, local_run))["done"]
    with rasterio.open(local_run / "atl0.tif") as local, rasterio.open(reference / "atl0.tif") as remote:
        assert np.array_equal(local.read(), remote.read()) and remote.tags()["source_image"].startswith("/vsis3/")
    out = f"s3://{BUCKET}/out"
    original = stages.write_stats

    def failing_stats(config, model_file, done, digest):
        if done.key == "atl1":
            raise OSError("simulated crash after the mask and polygons were written")
        return original(config, model_file, done, digest)

    monkeypatch.setattr(stages, "write_stats", failing_stats)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1000000000")
    first = run_pipeline(f"s3://{BUCKET}/in/*.tif", job(atlanta_model, out))
    assert [f["image"] for f in first["failed"]] == [f"/vsis3/{BUCKET}/in/atl1.tif"] and len(first["done"]) == 2
    assert "out/dead-letter/atl1.Stats.json" in keys(s3, "out") and "out/atl1.tif" in keys(s3, "out")
    assert "out/atl1.done.json" not in keys(s3, "out")
    s3.pipe(f"{BUCKET}/out/.atl2.tif.4242-abcdef.part.tif", b"half an upload")
    s3.pipe(f"{BUCKET}/out/.spill/atl1/0_0.npy", b"a spilled window")

    monkeypatch.setattr(stages, "write_stats", original)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "2000000000")
    second = run("pipeline", "run", "--input", f"s3://{BUCKET}/in/", "--model", atlanta_model, "-o", out,
                 "--window", "256", "--overlap", "32", "--batch-size", "2")
    assert second.exit_code == 0 and f"3 raster(s) done, 0 failed, 0 unfinished; outputs in {out}" in second.output
    finished = {k: json.loads(storage.read_text(f"{out}/{k}.done.json"))["finished_utc"] for k in ("atl0", "atl1")}
    assert finished["atl0"].startswith("2001-") and finished["atl1"].startswith("2033-")  # skipped / redone
    assert [k for k in keys(s3, "out") if "/." in k or "dead-letter" in k] == ["out/.landsight-output"]

    for key in ("atl0", "atl1", "atl2"):
        for suffix in ("tif", "geojsonl", "stats.csv"):
            assert s3.cat_file(f"{BUCKET}/out/{key}.{suffix}") == (reference / f"{key}.{suffix}").read_bytes(), key
        marker = json.loads(s3.cat_file(f"{BUCKET}/out/{key}.done.json"))
        expected = json.loads((reference / f"{key}.done.json").read_text())
        assert marker["outputs"]["mask"] == f"{out}/{key}.tif"
        assert {**marker, "outputs": {}, "finished_utc": ""} == {**expected, "outputs": {}, "finished_utc": ""}
    with rasterio.open(f"/vsis3/{BUCKET}/out/atl2.tif") as mask:  # GDAL reads the COG in place, too
        assert mask.tags()["model_sha256"] and mask.profile["tiled"]

    every_object = b"".join(s3.cat_file(k) for k in s3.find(f"{BUCKET}/out"))
    assert SECRET.encode() not in every_object and SECRET not in caplog.text
