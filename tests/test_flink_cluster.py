"""The Flink engine on a real standalone cluster: a JobManager and two TaskManagers, each a process on 127.0.0.1,
started by `landsight.pipeline.flink_cluster` (as scripts/flink-cluster.sh does) and stopped when the module ends."""

import signal
import threading
import time

import pytest

from landsight.errors import ConfigError, MissingExtraError
from landsight.pipeline.flink_cluster import kill_process, local_cluster, rest
from tests import test_pipeline
from tests.test_pipeline import SCHEME, assert_masks_equal, config, read, run

model, inputs, expected = test_pipeline.model, test_pipeline.inputs, test_pipeline.expected  # the same fixtures


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two TaskManagers with two slots each: a job of parallelism 2 spreads over both, and still fits on one."""
    from landsight.pipeline.flink import flink_python

    try:
        python = flink_python()
    except MissingExtraError as exc:
        pytest.skip(f"no Flink environment ({exc}); create it with scripts/flink-env.sh")
    with local_cluster(tmp_path_factory.mktemp("flink-cluster"), python, taskmanagers=2, slots=2) as running:
        yield running


@pytest.fixture(scope="module")
def uninterrupted(cluster, model, inputs, tmp_path_factory):
    """`landsight pipeline run --engine flink --flink-master` on the cluster, parallelism 2: (out dir, CLI result,
    the job's REST details)."""
    out = tmp_path_factory.mktemp("cluster-out")
    result = run("pipeline", "run", "--engine", "flink", "--flink-master", cluster.master, "--parallelism", "2",
                 "--input", inputs / "*.tif", "--model", model, "-o", out, *SCHEME)
    return out, result, latest_job(cluster.master)


def latest_job(master):
    jobs = sorted(rest(master, "/jobs/overview")["jobs"], key=lambda job: job["start-time"])
    return rest(master, f"/jobs/{jobs[-1]['jid']}")


def vertex_taskmanagers(master, job, name):
    vertex = next(v for v in job["vertices"] if v["name"].startswith(name))
    return {tm["taskmanager-id"] for tm in rest(master, f"/jobs/{job['jid']}/vertices/{vertex['id']}/taskmanagers")
            ["taskmanagers"]}


@pytest.mark.slow  # a cluster start, a model and 12 predicts: minutes on 2 cores, past the default suite's budget
def test_cluster_with_two_taskmanagers_equals_predict(cluster, uninterrupted, expected, inputs):
    out, result, job = uninterrupted
    assert result.exit_code == 0, result.output
    assert "12 raster(s) done, 0 failed" in result.output
    assert_masks_equal(expected, out, [p.name for p in inputs.glob("*.tif")])
    assert job["state"] == "FINISHED" and job["plan"]["type"] == "BATCH"
    segment = next(v for v in job["vertices"] if v["name"].startswith("ReadGateSegment"))
    assert segment["parallelism"] == 2
    assert len(vertex_taskmanagers(cluster.master, job, "ReadGateSegment")) == 2  # both TaskManagers segmented
    assert not list(out.glob(".*.part*")) and not any((out / ".spill").iterdir())


def test_flink_master_that_does_not_answer_is_refused(atlanta_model, atlanta_image, tmp_path):
    from landsight.pipeline.flink import check_master
    from landsight.pipeline.flink_cluster import free_ports

    with pytest.raises(ConfigError, match="`flink_master` must be HOST:PORT"):
        check_master("127.0.0.1")
    result = run("pipeline", "run", "--engine", "flink", "--flink-master", f"127.0.0.1:{free_ports(1)[0]}", "--input",
                 atlanta_image, "--model", atlanta_model, "-o", tmp_path / "out")
    assert result.exit_code == 2 and "no Flink JobManager answers" in result.output
    assert "--flink-master" in result.output and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_killed_taskmanager_the_job_recovers(cluster, uninterrupted, model, inputs, expected, tmp_path):
    """SIGKILL one TaskManager's process group (its Python workers with it) while both segment: Flink restarts the
    lost tasks on the other TaskManager's free slot and the outputs equal an uninterrupted run's."""
    from landsight.pipeline.flink import run_flink

    out, outcome = tmp_path / "out", {}

    def submit():
        try:
            outcome["summary"] = run_flink(str(inputs / "*.tif"), config(model, out), parallelism=2,
                                           flink_master=cluster.master, timeout=600)
        except Exception as exc:  # reported below, in the test's thread
            outcome["error"] = exc

    job_thread = threading.Thread(target=submit)
    job_thread.start()
    try:
        deadline = time.monotonic() + 300
        while not list((out / ".spill").glob("*/*.npy")) and job_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job_thread.is_alive(), f"the job ended before any window was segmented: {outcome}"
        kill_process(cluster.taskmanagers[1], cluster.folder, signal.SIGKILL)
    finally:
        job_thread.join(600)
    assert "error" not in outcome, outcome.get("error")
    assert len(outcome["summary"]["done"]) == 12 and not outcome["summary"]["failed"]
    job = latest_job(cluster.master)
    assert job["state"] == "FINISHED"
    failures = rest(cluster.master, f"/jobs/{job['jid']}/exceptions")["exceptionHistory"]["entries"]
    assert failures, "no task failed: the TaskManager was not killed mid-job"
    assert_masks_equal(expected, out, [p.name for p in inputs.glob("*.tif")])
    reference = uninterrupted[0]
    for path in sorted(reference.iterdir()):
        if path.name.endswith((".geojsonl", ".stats.csv")):
            assert path.read_bytes() == (out / path.name).read_bytes(), path.name
    for mask in out.glob("[!.]*.tif"):  # every final name holds a whole file
        read(mask)
    assert not list(out.glob(".*.part*")) and not any((out / ".spill").iterdir())
