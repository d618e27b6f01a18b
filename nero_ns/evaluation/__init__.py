"""Evaluation of nero outputs against ground truth (`nero-eval`)."""
