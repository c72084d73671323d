"""Segmentation models: a registry of architectures, encoders and pretrained weights. Imports torch."""
