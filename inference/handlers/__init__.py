"""Model handlers: one small class per model kind, registered by name (as in MONAI Label).

Pure: no Django. Importing this package imports neither torch nor MONAI; a handler's module
does, and is imported only when :func:`get_handler` is first asked for its kind (in a worker).
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> "module:Class"; the module is imported on first use only. A model's handler is named
# by its config's "handler" (imported models: "torchscript"), else by its kind (trained in the app).
HANDLERS: dict[str, str] = {
    "segmentation": "inference.handlers.segmentation:SegmentationHandler",
    "classification": "inference.handlers.classification:ClassificationHandler",
    "torchscript": "inference.handlers.torchscript:TorchScriptHandler",
}
_loaded: dict[str, type[Any]] = {}


class UnknownKind(ValueError):
    """No handler is registered for the model kind asked for."""


def handler_name(kind: str, config: dict[str, Any]) -> str:
    """The registered handler that runs a model of ``kind`` stored with ``config`` (ModelVersion.config)."""
    return str(config.get("handler") or kind)


def handler_class(kind: str) -> type[Any]:
    """The handler class registered under ``kind`` (a kind or a handler name; imports torch on first use)."""
    if kind not in _loaded:
        if kind not in HANDLERS:
            raise UnknownKind(f"No handler for model kind {kind!r}; known: {', '.join(sorted(HANDLERS))}.")
        module, _, name = HANDLERS[kind].partition(":")
        _loaded[kind] = getattr(importlib.import_module(module), name)
    return _loaded[kind]
