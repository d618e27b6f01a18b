"""Data pipeline: input checks, unit-sphere normalization, HDR-capable dataset, foreground-biased ray sampling."""
