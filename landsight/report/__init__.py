"""Pictures and pages for people: quicklook PNGs of rasters and masks, HTML reports. Never imports torch."""
