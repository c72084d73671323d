"""Option values are checked by the CLI before any work: exit 2, the option and its range named, nothing written."""

from __future__ import annotations

import click
import pytest

from landsight.cli.options import FiniteFloatRange, ThreadCount
from tests.conftest import DATA, SAMPLE

IMAGE, LABELS = SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson"
CLOUDS = DATA / "landsat8-clouds" / "l8-crop.tif"
TRAIN = ["train", IMAGE, LABELS, "-o", "{out}/model.pt"]
CLASSIFY = ["classify", "train", CLOUDS, "--cloud-mask", DATA / "landsat8-clouds" / "l8-bqa-crop.tif", "-o",
            "{out}/gate.pt"]
PREDICT = ["predict", "{out}/model.pt", IMAGE, "-o", "{out}/p.tif"]

CASES = [
    # (command line, bad option and value, text of the message)
    (["cloud", "filter", "{out}/gate.pt", CLOUDS, "-o", "{out}/c.csv"], ["--threshold", "7"], "0<=x<=1"),
    (["cloud", "filter", "{out}/gate.pt", CLOUDS, "-o", "{out}/c.csv"], ["--threshold", "nan"], "not a finite"),
    (["cloud", "train", CLOUDS, "-o", "{out}/gate.pt"], ["--cloudy-if", "1.5"], "0<x<=1"),
    (PREDICT, ["--batch-size", "0"], "x>=1"),
    (PREDICT, ["--window", "16"], "x>=32"),
    (PREDICT, ["--overlap", "-1"], "x>=0"),
    (["pipeline", "run", "--input", IMAGE, "--model", "{out}/model.pt", "-o", "{out}/run"], ["--batch-size", "0"],
     "x>=1"),
    (TRAIN, ["--epochs", "0"], "x>=1"),
    (TRAIN, ["--chip-size", "16"], "x>=32"),
    (TRAIN, ["--batch-size", "0"], "x>=1"),
    (TRAIN, ["--chips-per-epoch", "0"], "x>=1"),
    (TRAIN, ["--lr", "0"], "x>0"),
    (TRAIN, ["--lr", "nan"], "not a finite"),
    (TRAIN, ["--val-fraction", "1"], "0<=x<1"),
    (TRAIN, ["--patience", "0"], "x>=1"),
    (TRAIN, ["--seed", "-1"], "0<=x<=2147483647"),
    (TRAIN, ["--ensemble", "0"], "x>=1"),
    (TRAIN, ["--max-minutes", "0"], "x>0"),
    (TRAIN, ["--bounds", "0", "0", "inf", "1"], "not a finite"),
    (TRAIN, ["--class-weights", "1,x"], "one number per class"),
    (TRAIN, ["--class-weights", "1,-4"], ">= 0"),
    (CLASSIFY, ["--chip-size", "0"], "x>=1"),
    (CLASSIFY, ["--stride", "0"], "x>=1"),
    (CLASSIFY, ["--cloudy-if", "0"], "0<x<=1"),
    (CLASSIFY, ["--qa-value", "-1"], "x>=0"),
    (CLASSIFY, ["--min-labelled", "1.5"], "0<=x<=1"),
    (CLASSIFY, ["--multi-label-min", "0"], "0<x<=1"),
    (CLASSIFY, ["--block-chips", "0"], "x>0"),
    (CLASSIFY, ["--max-epochs", "0"], "x>=1"),
    (CLASSIFY, ["--patience", "0"], "x>=1"),
    (CLASSIFY, ["--seed", "-5"], "0<=x<=2147483647"),
    (CLASSIFY, ["--threads", "0"], "at least 1"),
    (CLASSIFY, ["--threads", "many"], "neither a number of threads nor auto"),
    (["similar", "index", "{out}/gate.pt", CLOUDS, "-o", "{out}/i.npz"], ["-k", "0"], "x>=1"),
    (["similar", "query", IMAGE, CLOUDS], ["-k", "0"], "x>=1"),
    (["export", "{out}/gate.pt", "--onnx", "{out}/g.onnx"], ["--batch-size", "0"], "x>=1"),
    (["export", "{out}/gate.pt", "--onnx", "{out}/g.onnx"], ["--bench-seconds", "0"], "x>0"),
    (["export", "{out}/gate.pt", "--onnx", "{out}/g.onnx"], ["--threads", "-2"], "at least 1"),
    (["demo", "-o", "{out}/demo"], ["--max-minutes", "0"], "x>0"),
    (["dataset", "check", IMAGE, LABELS, "--json", "{out}/c.json"], ["--val-fraction", "nan"], "not a finite"),
    (["vectorize", IMAGE, "-o", "{out}/v.geojson"], ["--simplify", "inf"], "not a finite"),
    (["compare", IMAGE, LABELS, "-o", "{out}/cmp"], ["--iou-threshold", "nan"], "not a finite"),
    (["change", IMAGE, IMAGE, "-o", "{out}/chg"], ["--threshold", "inf"], "not a finite"),
    (["evaluate", IMAGE, LABELS, "-o", "{out}/ev"], ["--bounds", "0", "0", "nan", "1"], "not a finite"),
]


@pytest.mark.parametrize(("command", "bad", "expected"), CASES, ids=[" ".join(map(str, c[1])) for c in CASES])
def test_bad_option_values_exit_2_before_any_work(invoke, tmp_path, command, bad, expected):
    args = [str(a).format(out=tmp_path) for a in command]
    result = invoke(*args, *bad)
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert bad[0] in text and expected in text, text
    assert "Traceback" not in text
    assert not any(tmp_path.iterdir())  # nothing written


def test_qa_bits_out_of_order_are_refused(invoke, tmp_path):
    result = invoke(*[str(a).format(out=tmp_path) for a in CLASSIFY], "--qa-bits", "15,14")
    assert result.exit_code == 2 and "--qa-bits '15,14'" in result.output and "0 to 63" in result.output
    assert not any(tmp_path.iterdir())


def test_option_types_accept_what_they_should():
    assert FiniteFloatRange(0, 1).convert("1", None, None) == 1.0
    assert ThreadCount().convert("auto", None, None) == "auto"
    assert ThreadCount().convert("3", None, None) == 3
    for bad in ("nan", "-inf"):
        with pytest.raises(click.BadParameter, match="not a finite number"):
            FiniteFloatRange().convert(bad, None, None)
