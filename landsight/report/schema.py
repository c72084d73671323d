"""The header every JSON report of landsight carries (schema, schema version, landsight version, creation time),
and the one reader that checks it. Never imports torch."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from landsight import __version__
from landsight.errors import ReportError
from landsight.provenance import utc_now


@dataclasses.dataclass(frozen=True)
class ReportKind:
    """A kind of report: its current schema version and the command that writes it."""

    version: int
    command: str


KINDS: dict[str, ReportKind] = {
    "dataset-check": ReportKind(1, "landsight dataset check"),
    "evaluation": ReportKind(1, "landsight evaluate"),
    "compare": ReportKind(1, "landsight compare"),
    "demo": ReportKind(1, "landsight demo"),
    "download": ReportKind(1, "landsight download"),
    "classifier": ReportKind(1, "landsight classify train"),
}
"""Report kind -> schema version written by this landsight (raise it when a key changes meaning or goes away)."""

PREFIX = "landsight-"
HEADER_KEYS = ("schema", "schema_version", "landsight_version", "created_utc")
"""The keys of `ReportHeader`, first in every report file."""


@dataclasses.dataclass(frozen=True)
class ReportHeader:
    """The first keys of a report file: `schema` ("landsight-KIND"), `schema_version`, `landsight_version` and
    `created_utc` (see `landsight.provenance.utc_now`)."""

    schema: str
    schema_version: int
    landsight_version: str
    created_utc: str

    @classmethod
    def new(cls, kind: str) -> ReportHeader:
        """The header of a `kind` report written now by this landsight; report dataclasses default their `header`
        field to one: `dataclasses.field(default_factory=lambda: ReportHeader.new("demo"))`."""
        return cls(PREFIX + kind, KINDS[kind].version, __version__, utc_now())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return dataclasses.asdict(self)


def with_header(header: ReportHeader, body: dict[str, Any]) -> dict[str, Any]:
    """`body` after the header's keys (a body key of the same name would be a bug, so it raises ValueError)."""
    head = header.to_dict()
    clash = sorted(set(head) & set(body))
    if clash:
        raise ValueError(f"report body keys {clash} clash with the header")
    return {**head, **body}


def read_report(path: str | Path, kind: str) -> dict[str, Any]:
    """The JSON object of the `kind` report at `path`, header included.

    Raises:
        ReportError: the file is unreadable, not JSON, has no landsight header, is another kind of report, or has a
            newer schema version than this landsight reads.
    """
    expected, fix = KINDS[kind], f"rerun `{KINDS[kind].command}` with this landsight ({__version__}) to rewrite it"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"cannot read the report {path} ({exc.strerror or exc}); check the path") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ReportError(f"{path} is not a JSON report ({exc}); {fix}") from exc
    schema = data.get("schema") if isinstance(data, dict) else None
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportError(f"{path} has no landsight report header (schema {PREFIX + kind!r} expected): it was written "
                          f"by an older landsight or another program; {fix}")
    if schema != PREFIX + kind:
        raise ReportError(f"{path} is a {schema!r} report, not {PREFIX + kind!r}; pass the report "
                          f"`{expected.command}` writes")
    version = data.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ReportError(f"{path} has an invalid schema_version {version!r}; {fix}")
    if version > expected.version:
        raise ReportError(f"{path} has schema_version {version} of {schema!r} (written by landsight "
                          f"{data.get('landsight_version', 'unknown')}); this landsight {__version__} reads up to "
                          f"{expected.version}: upgrade landsight, or {fix}")
    return data
