"""Training: one engine (:mod:`maskface.train.engine`) that runs every network recipe (:mod:`maskface.train.recipes`),
and the front end's dlib trainers (:mod:`maskface.train.frontend`)."""
