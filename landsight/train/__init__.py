"""Training: losses, the fit loop with early stopping and resume, curves."""
