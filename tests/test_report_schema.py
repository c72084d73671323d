"""The report header and its reader: every JSON report says its kind and schema version; old, foreign and newer
files are refused by name (exit 2 through the CLI, see tests/classify/test_cli_classify.py)."""

import json

import numpy as np
import pytest

from landsight import __version__
from landsight.errors import OutputExistsError, ReportError
from landsight.evaluate import EvaluationReport
from landsight.metrics import summarize
from landsight.report.files import write_json, write_report
from landsight.report.schema import HEADER_KEYS, KINDS, ReportHeader, ReportKind, read_report, with_header


def _evaluation() -> EvaluationReport:
    scores = summarize(np.array([[5, 1], [2, 8]]), ["background", "building"])
    return EvaluationReport(**scores, inputs={"prediction": "p.tif", "labels": "l.geojson", "class_field": None,
                                              "background": True},
                            bounds=None, window={"col_off": 0, "row_off": 0, "width": 4, "height": 4},
                            unpredicted_pixels=0)


def test_header_names_kind_version_landsight_and_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    header = ReportHeader.new("evaluation")
    assert header.to_dict() == {"schema": "landsight-evaluation", "schema_version": KINDS["evaluation"].version,
                                "landsight_version": __version__, "created_utc": "1970-01-01T00:00:00+00:00"}
    assert tuple(header.to_dict()) == HEADER_KEYS


def test_round_trip_to_dict_file_read_report(tmp_path):
    report = _evaluation()
    path = tmp_path / "metrics.json"
    write_report(path, report)
    data = read_report(path, "evaluation")
    assert data == report.to_dict()
    assert list(data)[:4] == list(HEADER_KEYS) and data["per_class"]["building"]["support"] == 10
    assert not [p for p in tmp_path.iterdir() if p.name != "metrics.json"]  # no temporaries left


def test_writer_refuses_an_existing_file_without_overwrite(tmp_path):
    path = tmp_path / "metrics.json"
    write_report(path, _evaluation(), overwrite=False)
    with pytest.raises(OutputExistsError):
        write_report(path, _evaluation(), overwrite=False)


def test_body_keys_may_not_shadow_the_header():
    with pytest.raises(ValueError, match="schema"):
        with_header(ReportHeader.new("demo"), {"schema": "mine"})


@pytest.mark.parametrize(("content", "expected"), [
    ("{not json", "is not a JSON report"),
    ('{"type": "FeatureCollection", "features": []}', "no landsight report header"),
    ("[1, 2]", "no landsight report header"),
    ('{"schema": "landsight-compare", "schema_version": 1}', "is a 'landsight-compare' report, not "
                                                             "'landsight-evaluation'"),
    ('{"schema": "landsight-evaluation", "schema_version": "1"}', "invalid schema_version '1'"),
    ('{"schema": "landsight-evaluation", "schema_version": 7, "landsight_version": "9.0"}',
     "schema_version 7 of 'landsight-evaluation' .written by landsight 9.0.; this landsight .* reads up to 1"),
])
def test_not_json_foreign_other_kind_or_newer_is_refused(tmp_path, content, expected):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=expected) as info:
        read_report(path, "evaluation")
    assert str(path) in str(info.value)


def test_the_fix_names_the_command_that_writes_the_report(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"class": "building"})  # a summary of an older landsight: no header
    with pytest.raises(ReportError, match=r"rerun `landsight compare` with this landsight"):
        read_report(path, "compare")


def test_a_missing_report_is_refused(tmp_path):
    with pytest.raises(ReportError, match="cannot read the report"):
        read_report(tmp_path / "gone.json", "demo")


def test_an_older_schema_version_is_read(tmp_path, monkeypatch):
    """Reports of an older schema version of the same kind stay readable (readers handle what changed)."""
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"schema": "landsight-demo", "schema_version": 1, "model": "m.pt"}))
    monkeypatch.setitem(KINDS, "demo", ReportKind(2, "landsight demo"))
    assert read_report(path, "demo")["model"] == "m.pt"
