"""The one training core: a task (what is learnt) inside a Lightning module, trained by `fit` with the shared
policies (best epoch, early stopping, time budget, resume, history, bf16, several devices)."""

import logging
import warnings

import lightning.pytorch  # noqa: F401 - sets its loggers' levels on import; set ours after

# Lightning's banners and hints are for its own users; landsight reports what it does itself. Set on import, so that
# spawned training processes (which import this package to unpickle their task) are as quiet as the main one.
for _name in ("lightning.pytorch", "lightning.fabric", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")  # Lightning 2.6 on torch 2.14
