"""Trainer-ready frames: a release's sampled frames written to disk once, ahead of training.

``streamo_data.video.timing`` decides which native frames (the reference trainer's pick, or the nearest to
each sampled time); here ``layout`` names folders and marks finished ones, ``extract`` writes one video's
frames, and ``export`` runs that over a release's videos on Ray and writes the image-format records.
"""
