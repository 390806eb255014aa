"""Write ``dendrite_sim/data/digits.npz`` from scikit-learn's bundled digits (run once, commit).

The UCI optical-recognition digits as scikit-learn ships them (Alpaydin & Kaynak 1998):
1797 images of 8×8 pixels with integer intensities 0–16, labels 0–9. Stored as
``images`` (1797, 64) uint8 and ``labels`` (1797,) uint8, compressed.

    python scripts/make_digits_npz.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    digits = load_digits()
    images = digits.data.astype(np.uint8)
    labels = digits.target.astype(np.uint8)
    assert images.shape == (1797, 64) and images.max() == 16
    out = Path(__file__).resolve().parent.parent / "dendrite_sim" / "data" / "digits.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images, labels=labels)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
