"""Metrics: functional API (tensors in, numbers out) and torchmetrics ``Metric`` classes."""
