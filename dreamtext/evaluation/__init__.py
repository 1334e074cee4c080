"""Evaluation (DESIGN §8, §13): the protocol, metrics, OCR, reports, comparisons, the training probe,
the ablation and the training curves."""
