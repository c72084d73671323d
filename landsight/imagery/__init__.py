"""Reading rasters by windows, band specs, statistics and window grids. Never imports torch."""
