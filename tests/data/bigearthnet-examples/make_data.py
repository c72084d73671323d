"""Regenerate the BigEarthNet test patches from the shared sample archive (run once, by hand).

Keeps, for each of the 6 Sentinel-2 L2A patches, the 10 m bands B02 B03 B04 B08 (120 x 120 px GeoTIFFs) and the
multi-label metadata JSON; the 20 m and 60 m bands are left out to keep the repository small.
"""

import sys
import tarfile
from pathlib import Path

DEFAULT = "../../../../shared/data/bigearthnet-examples/BigEarthNet-S2-Example.tar.bz2"
SOURCE = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
KEEP = ("_B02.tif", "_B03.tif", "_B04.tif", "_B08.tif", "_labels_metadata.json")

with tarfile.open(SOURCE) as archive:
    for member in archive.getmembers():
        if member.isfile() and member.name.endswith(KEEP):
            target = Path(*Path(member.name).parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.extractfile(member).read())
            print(target)
