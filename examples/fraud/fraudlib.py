"""Synthetic credit-card transactions and a small numpy logistic regression.

Kept in a module of its own so that capture records the experiment's steps (fine capture covers
the experiment script; calls into this module are recorded as single operations).
"""
from __future__ import annotations

import csv
import os

import numpy as np

FEATURES = ["amount", "hour", "distance_km", "merchant_risk", "card_age_days", "foreign"]


def make_transactions(path: str, n: int, seed: int, fraud_rate: float = 0.03) -> str:
    """Write `n` seeded synthetic transactions to a CSV file at `path` and return the path."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < fraud_rate
    amount = np.where(fraud, rng.lognormal(3.9, 1.0, n), rng.lognormal(3.5, 1.0, n))
    hour = np.where(fraud & (rng.random(n) < 0.4), rng.integers(0, 6, n), rng.integers(0, 24, n)) + rng.random(n)
    distance = np.where(fraud, rng.exponential(45.0, n), rng.exponential(20.0, n))
    merchant_risk = np.clip(rng.normal(np.where(fraud, 0.4, 0.3), 0.15), 0, 1)
    card_age = np.where(fraud, rng.exponential(400.0, n), rng.exponential(700.0, n))
    foreign = (rng.random(n) < np.where(fraud, 0.15, 0.05)).astype(int)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FEATURES + ["fraud"])
        for row in zip(amount, hour, distance, merchant_risk, card_age, foreign, fraud.astype(int)):
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else int(v) for v in row])
    return path


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    return data[:, :-1], data[:, -1]


def split(X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int):
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return X[train], X[test], y[train], y[test]


def standardize(X_train: np.ndarray, X_test: np.ndarray):
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-12
    return (X_train - mean) / std, (X_test - mean) / std


def train_logreg(X: np.ndarray, y: np.ndarray, learning_rate: float, epochs: int, l2: float) -> np.ndarray:
    """Full-batch gradient descent; returns weights with the bias last."""
    Xb = np.hstack([X, np.ones((len(X), 1))])
    w = np.zeros(Xb.shape[1])
    for _ in range(epochs):
        p = 1.0 / (1.0 + np.exp(-Xb @ w))
        w -= learning_rate * (Xb.T @ (p - y) / len(y) + l2 * np.r_[w[:-1], 0.0])
    return w


def predict_proba(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(X @ w[:-1] + w[-1])))


def roc_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula (ties get average ranks)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall(y: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    predicted = scores >= threshold
    true_pos = float(np.sum(predicted & (y == 1)))
    precision = true_pos / max(float(predicted.sum()), 1.0)
    recall = true_pos / max(float((y == 1).sum()), 1.0)
    return precision, recall
