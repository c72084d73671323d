"""Edge export: MODEL files (classification or segmentation) to ONNX with their metadata, and an onnxruntime path."""
