"""Print the pip constraints a Raspberry Pi install needs, for `pip install -c FILE`.

Run with the interpreter the venv is made from (it sees apt's packages):

    .venv/bin/python systemd/pip-constraints.py > .venv/constraints.txt

- apt's numpy, pinned: picamera2's compiled helpers (simplejpeg, pidng) are built against it and
  break on a pip-installed numpy of another major version.
- with numpy 1, OpenCV below 4.12: every OpenCV wheel from 4.12 on needs numpy 2, and pip learns
  that only by downloading each one (about 35 MB apiece) before it settles on 4.11.

Stdlib only, and a file of its own rather than a module of the package: it runs before the
package is installed. Prints nothing where Python has no numpy (pip takes an empty file).
"""

from __future__ import annotations

# The first OpenCV release whose wheels require numpy >= 2 (opencv-python 4.12.0.88).
OPENCV_NEEDS_NUMPY2 = "4.12"
OPENCV_DISTRIBUTIONS = ("opencv-python-headless", "opencv-python")


def constraints(numpy_version: str | None) -> list[str]:
    """The constraint lines for a Python whose own numpy is `numpy_version` (None: no numpy)."""
    if numpy_version is None:
        return []
    lines = [f"numpy=={numpy_version}"]
    if int(numpy_version.split(".")[0]) < 2:
        lines += [f"{name}<{OPENCV_NEEDS_NUMPY2}" for name in OPENCV_DISTRIBUTIONS]
    return lines


def system_numpy_version() -> str | None:
    """The version of the numpy this interpreter imports (the one the venv must keep)."""
    try:
        import numpy
    except ImportError:
        return None
    return str(numpy.__version__)


if __name__ == "__main__":
    for line in constraints(system_numpy_version()):
        print(line)
