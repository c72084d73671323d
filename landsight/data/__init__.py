"""Training data: torch datasets over raster windows and joint image+mask augmentation."""
