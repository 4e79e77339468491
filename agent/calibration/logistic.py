"""The small amount of statistics the confidence model needs: standardised L2 logistic regression.

Fitted by ``supportlah calibrate`` on several businesses' labelled questions (see that module);
kept here, beside the model it produces, so the agent layer owns both the model and its maths.
"""
from __future__ import annotations

import numpy as np

L2 = 1.0


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, iterations: int = 50) -> tuple[np.ndarray, float]:
    """Newton-Raphson for L2-regularised logistic regression (bias unpenalised)."""
    n, d = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    theta = np.zeros(d + 1)
    penalty = np.diag([0.0] + [l2] * d)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (p - y) + penalty @ theta
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[1:], float(theta[0])


def standardise(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    means = matrix.mean(axis=0)
    scales = matrix.std(axis=0)
    scales[scales < 1e-9] = 1.0
    return (matrix - means) / scales, means, scales


def fit_standardised(matrix: np.ndarray, labels: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Weights, bias, means and scales of a model fitted on ``matrix`` (rows = observations)."""
    x, means, scales = standardise(matrix)
    weights, bias = fit_logistic(x, labels, l2)
    return weights, bias, means, scales


def predict(matrix: np.ndarray, weights: np.ndarray, bias: float, means: np.ndarray, scales: np.ndarray,
            max_z: float = 3.0) -> np.ndarray:
    """As ``agent.confidence.ConfidenceModel.predict``: standardised features clipped to ``max_z``."""
    z = bias + np.clip((matrix - means) / scales, -max_z, max_z) @ weights
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))
