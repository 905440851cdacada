"""Training: one engine (:mod:`maskface.train.engine`) that runs every recipe (:mod:`maskface.train.recipes`)."""
