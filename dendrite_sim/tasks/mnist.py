"""MNIST (LeCun et al. 1998) from a local path the user supplies — never downloaded.

``path`` is either

* a folder holding the four idx files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (each optionally gzipped, ``.gz``; the
  common spelling ``train-images.idx3-ubyte`` is accepted too), or
* an ``.npz`` file with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``
  (images (n, 28, 28) or (n, 784), labels (n,)).

The idx format: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
big-endian uint32, then the data, big-endian. Images are flattened and divided by 255 (by their
maximum if that exceeds 255). ``n_train`` / ``n_test`` > 0 keep a random subset (task rng).
Every problem with the files is a ScenarioError at ``task.path``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from dendrite_sim.core.errors import ScenarioError
from dendrite_sim.core.interfaces import Dataset, Task
from dendrite_sim.core.registry import register
from dendrite_sim.core.schema import REQUIRED, Field

KEY = "task.path"
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def read_idx(path: str | Path, key: str = KEY) -> np.ndarray:
    """Read one idx file (gzipped if its name ends in ``.gz``) into an array of its shape."""
    path = Path(path)
    try:
        raw = gzip.open(path, "rb").read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise ScenarioError(key, f"could not read idx file {str(path)!r}: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ScenarioError(key, f"expected an idx file (magic 00 00 <type> <ndim>); "
                            f"{str(path)!r} is not one")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ScenarioError(key, f"{str(path)!r}: idx header is truncated")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ScenarioError(key, f"{str(path)!r}: idx header announces shape {shape} "
                            f"({expected} data bytes) but the file holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise ScenarioError(KEY, f"expected {names[0]} (or {names[0]}.gz) in folder {str(folder)!r}; "
                        "it is missing")


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The four raw arrays from an idx folder or an npz file."""
    path = Path(path).expanduser()
    if path.is_dir():
        return {k: read_idx(_find(path, names)) for k, names in IDX_FILES.items()}
    if path.is_file():
        try:
            z = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise ScenarioError(KEY, f"expected an npz file or a folder of idx files; could not read "
                                f"{str(path)!r}: {exc}") from None
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ScenarioError(KEY, f"expected an .npz archive (x_train, y_train, x_test, y_test); "
                                f"{str(path)!r} holds a single array")
        with z:
            missing = [k for k in IDX_FILES if k not in z.files]
            if missing:
                raise ScenarioError(KEY, f"expected an npz with x_train, y_train, x_test, y_test; "
                                    f"{str(path)!r} lacks {', '.join(missing)}")
            return {k: z[k] for k in IDX_FILES}
    raise ScenarioError(KEY, f"expected a folder of MNIST idx files or an .npz file; {str(path)!r} "
                        "does not exist")


def _check(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    out = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim not in (2, 3) or x.shape[0] == 0:
            raise ScenarioError(KEY, f"expected x_{split} of shape (n, rows, cols) or (n, pixels), "
                                f"got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise ScenarioError(KEY, f"expected y_{split} of shape ({len(x)},) matching x_{split}, "
                                f"got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ScenarioError(KEY, f"expected non-negative integer labels in y_{split}")
        out += [x.reshape(len(x), -1), y.astype(np.int64)]
    if out[0].shape[1] != out[2].shape[1]:
        raise ScenarioError(KEY, f"train images have {out[0].shape[1]} pixels, test images {out[2].shape[1]}")
    return tuple(out)


@register("task", "mnist")
class MNIST(Task):
    """MNIST digits from a local idx folder or npz file (no download); pixels scaled to [0, 1]."""

    params = {
        "path": Field("str", REQUIRED, "folder with the four idx files (optionally .gz) or an .npz"),
        "n_train": Field("int", 0, "random training subset size (0 = all)", lo=0),
        "n_test": Field("int", 0, "random test subset size (0 = all)", lo=0),
    }

    def __init__(self, path, n_train=0, n_test=0):
        if not Path(path).expanduser().exists():
            raise ScenarioError(KEY, f"expected a folder of MNIST idx files or an .npz file; "
                                f"{path!r} does not exist")
        self.path, self.n_train, self.n_test = path, n_train, n_test

    def dataset(self, rng):
        x_train, y_train, x_test, y_test = _check(load_arrays(self.path))
        scale = max(255.0, float(max(x_train.max(), x_test.max())))
        n_classes = int(max(y_train.max(), y_test.max())) + 1
        if 0 < self.n_train < len(x_train):
            keep = np.sort(rng.choice(len(x_train), self.n_train, replace=False))
            x_train, y_train = x_train[keep], y_train[keep]
        if 0 < self.n_test < len(x_test):
            keep = np.sort(rng.choice(len(x_test), self.n_test, replace=False))
            x_test, y_test = x_test[keep], y_test[keep]
        return Dataset(x_train=x_train.astype(np.float64) / scale, y_train=y_train,
                       x_test=x_test.astype(np.float64) / scale, y_test=y_test, n_classes=n_classes)
