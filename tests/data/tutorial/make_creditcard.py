"""Write a small synthetic `dataset/creditcard.csv` with the schema of the tutorial's data.

The tutorial reads the Kaggle "Credit Card Fraud Detection" data set (Worldline and ULB), which is
not in its repository and is not fetched here. This file has the same columns (Time, V1..V28,
Amount, Class) and a few hundred rows drawn from a fixed seed, with more frauds (Class 1) than
the real data so that undersampling, a train/test split and the scores still have rows to work
with. Run it in the folder of the notebooks: ``python make_creditcard.py``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROWS = 400
FRAUDS = 60
SEED = 20230801


def write(folder: Path) -> Path:
    """Write `folder`/dataset/creditcard.csv (the same bytes on every run) and return its path."""
    rng = np.random.default_rng(SEED)
    labels = np.zeros(ROWS, dtype=int)
    labels[rng.choice(ROWS, FRAUDS, replace=False)] = 1
    time = np.sort(rng.integers(0, 172_800, ROWS))
    features = rng.normal(0.0, 1.0, (ROWS, 28))
    features[labels == 1, :6] += rng.normal(0.6, 0.5, (FRAUDS, 6))  # frauds stand apart a little
    amount = np.round(rng.gamma(2.0, 40.0, ROWS), 2)
    path = folder / "dataset" / "creditcard.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join(["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"])
    lines = [header]
    for row in range(ROWS):
        values = [str(time[row]), *(f"{x:.6f}" for x in features[row]), f"{amount[row]:.2f}", str(labels[row])]
        lines.append(",".join(values))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()))
