"""`landsight serve` refuses bad settings before binding anything (exit 2, naming the value and the fix)."""

from __future__ import annotations

import pytest

from landsight.errors import ConfigError
from landsight.serve.config import ServeConfig, model_names, parse_sources
from tests.serve.conftest import run


def test_serve_is_registered():
    result = run("--help")
    assert "serve" in result.output
    assert "--max-batch" in run("serve", "--help").output


@pytest.mark.parametrize(("args", "says"), [
    (["--source", "city"], "use NAME=RASTER"),
    (["--source", "city=/nonexistent/city.tif"], "raster not found"),
    (["--window", "100"], "multiple of 32"),
    (["--max-batch", "0"], "--max-batch"),
])
def test_bad_settings_exit_2(quick_model, args, says):
    result = run("serve", quick_model, *args)
    assert result.exit_code == 2 and says in result.output, result.output


def test_short_token_and_bad_names(quick_model, tmp_path):
    token = tmp_path / "token.txt"
    token.write_text("short\n")
    result = run("serve", quick_model, "--token-file", token)
    assert result.exit_code == 2 and "at least 16" in result.output
    with pytest.raises(ConfigError, match="letters, digits"):
        model_names(["../etc=model.pt"])
    with pytest.raises(ConfigError, match="named 'a'"):
        model_names(["a=x.pt", "a=y.pt"])
    assert parse_sources(["city=c.tif"]) == {"city": "c.tif"}
    config = ServeConfig({"m": "m.pt"}, token="t" * 20)
    assert ServeConfig.from_json(config.to_json()) == config
