"""Start from an area: tile covers, XYZ/WMS downloads, STAC search, remote COG reads, XYZ pyramids and mosaics.

No module here imports torch or click.
"""

from __future__ import annotations

import importlib

from landsight.errors import MissingExtraError

_EXTRA = ("httpx", "tenacity", "pystac", "pystac_client")


def require_acquire() -> None:
    """Check that the `acquire` extra (httpx, tenacity, pystac, pystac-client) is installed, or say how to."""
    for name in _EXTRA:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise MissingExtraError(f"downloads and STAC need {name}: pip install 'landsight[acquire]' "
                                    "(httpx, tenacity, pystac, pystac-client)") from exc
