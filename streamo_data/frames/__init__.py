"""Trainer-ready frames: a release's sampled frames written to disk once, ahead of training.

``timing`` decides which native frames (the reference trainer's pick, or the nearest to each sampled
time), ``layout`` names folders and marks finished ones, ``extract`` writes one video's frames, and
``export`` runs that over a release's videos on Ray and writes the image-format records.
"""
