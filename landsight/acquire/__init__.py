"""Start from an area: tile covers, XYZ/WMS downloads, STAC search, remote COG reads, XYZ pyramids and mosaics.

No module here imports torch or click.
"""

from __future__ import annotations

from landsight.errors import import_extra

_EXTRA = ("httpx", "tenacity", "pystac", "pystac_client")


def require_acquire() -> None:
    """Check that the `acquire` extra (httpx, tenacity, pystac, pystac-client) is installed, or say how to."""
    for name in _EXTRA:
        import_extra(name, f"downloads and STAC need {name}: pip install 'landsight[acquire]' "
                           "(httpx, tenacity, pystac, pystac-client)")
