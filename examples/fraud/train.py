"""Credit-card fraud detection: logistic regression on seeded synthetic transactions.

Runs as a plain script (`python train.py`) and as a pytest-nwtrials experiment, where the
tagged values are recorded as a trial and compared with the committed baseline.
"""
from fraudlib import (load, make_transactions, precision_recall, predict_proba, roc_auc, split,
                      standardize, train_logreg)

from pytest_nwtrials import tag

SEED = 7
N_TRANSACTIONS = 4000
TEST_FRACTION = 0.3
LEARNING_RATE = 0.5
EPOCHS = 200
L2 = 0.001
THRESHOLD = 0.1

path = make_transactions("data/transactions.csv", n=N_TRANSACTIONS, seed=SEED)
X, y = load(path)
X_train, X_test, y_train, y_test = split(X, y, TEST_FRACTION, seed=SEED)
X_train, X_test = standardize(X_train, X_test)

weights = tag("weights", train_logreg(X_train, y_train, learning_rate=LEARNING_RATE, epochs=EPOCHS, l2=L2))
scores = predict_proba(X_test, weights)

auc = tag("auc", roc_auc(y_test, scores))
precision, recall = precision_recall(y_test, scores, THRESHOLD)
tag("summary", {
    "precision": round(precision, 6),
    "recall": round(recall, 6),
    "n_test": int(len(y_test)),
    "fraud_rate": round(float(y.mean()), 6),
})
print(f"auc={auc:.4f} precision={precision:.3f} recall={recall:.3f}")
