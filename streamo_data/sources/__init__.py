"""The sources layer: where events come from. Recipes import public annotation files (one per source
format), annotators make events from videos (offline, or through an OpenAI-compatible API), and sample
data makes the bundled demo inputs."""
