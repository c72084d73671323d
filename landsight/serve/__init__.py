"""`landsight serve`: models over HTTP (FastAPI) with dynamic batching, seamless XYZ tiles, limits and metrics."""

from landsight.serve.app import create_app, create_app_from_env, load_models
from landsight.serve.config import Batching, Limits, ServeConfig

__all__ = ["Batching", "Limits", "ServeConfig", "create_app", "create_app_from_env", "load_models"]
