"""Start from an area: tile covers, XYZ/WMS downloads, STAC search, remote COG reads, XYZ pyramids and mosaics.

No module here imports torch or click.
"""
