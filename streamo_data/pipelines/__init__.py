"""Ray Data wiring of the stages: where they run, what they read and write, how a rerun resumes."""
