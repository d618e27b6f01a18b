"""`nero-process`: COLMAP processing of a user's photos or video into a dataset nero-shape reads, and its check."""
