"""The host tools' own dependencies (the ``[host]`` extra), and one line when one is missing.

A venv made with ``pip install -e .`` (the Pi runtime) has no TensorFlow, pycocotools or
matplotlib. A host tool run there says so in one line naming the missing package and the
command that installs it, exit code 2, instead of a ``ModuleNotFoundError`` traceback (at import
time for the TensorFlow tools, or after a whole evaluation for pycocotools).
"""

from __future__ import annotations

import importlib
import sys

# Module name -> the PyPI package of pyproject.toml's [host] extra that brings it.
HOST_PACKAGES = {
    "tensorflow": "tensorflow",
    "tf_keras": "tf-keras",
    "tensorflow_model_optimization": "tensorflow-model-optimization",
    "pycocotools": "pycocotools",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
}

INSTALL_HINT = (
    'the host tools need the [host] extra: run pip install -e ".[host]" in the checkout '
    "(pip install -e . installs the Pi runtime only)"
)


def missing_host_package(exc: BaseException) -> str | None:
    """The one-line message for a ``ModuleNotFoundError`` of a ``[host]`` package, else None."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    package = HOST_PACKAGES.get(exc.name.split(".")[0])
    if package is None:
        return None
    return f"{package} is not installed in {sys.prefix}; {INSTALL_HINT}"


def exit_if_tool(exc: ModuleNotFoundError) -> None:
    """At import time: when this process runs a host tool (``python -m host_tools.X``) and a
    ``[host]`` package is missing, print one line and exit 2; otherwise return (the caller
    re-raises, so a library import or a test's ``importorskip`` sees the ImportError)."""
    message = missing_host_package(exc)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    tool = getattr(spec, "name", "") or ""
    if message is None or not tool.startswith("host_tools."):
        return
    print(f"{tool.rsplit('.', 1)[-1]}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def require(*modules: str) -> None:
    """Import ``modules`` now, so a tool whose late steps need them (pycocotools after a whole
    evaluation) stops before its work; ``host_tools._cli.cli_errors`` turns the
    ``ModuleNotFoundError`` into one line."""
    for name in modules:
        importlib.import_module(name)
