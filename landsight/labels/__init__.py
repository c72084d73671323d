"""Vector labels: class tables, reading and reprojecting features, rasterizing to masks. Never imports torch."""
