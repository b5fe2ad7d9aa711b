# Two entry points: `make demo` (the main job on the bundled sample) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/streamo demo --out demo_out

test: $(STAMP)
	$(BIN)/ruff check streamo_data tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

bench: $(STAMP)  # every benchmark, about 10 minutes on 2 cores; figures go to BENCHMARKS.md by hand
	$(BIN)/python bench/sampling_backends.py
	$(BIN)/python bench/build_scale.py
	$(BIN)/python bench/annotate_throughput.py
	$(BIN)/python bench/focal_ablation.py
	$(BIN)/python bench/loss_memory.py
	$(BIN)/python bench/corpus_coverage.py
	$(BIN)/python bench/convert_reference.py  # needs bench/_work/convert_streaming_video.py (see its docstring)
	$(BIN)/python bench/mixture_llm.py
	$(BIN)/python bench/fidelity_public.py  # after mixture_llm.py (its release and cache)
	$(BIN)/python bench/llm_tokens.py  # uses mixture_llm.py's videos
	$(BIN)/python bench/frames_export.py  # needs ffmpeg on the PATH
	$(BIN)/python bench/cluster_storage.py  # a 2-node Ray cluster and an S3 server on loopback

clean:
	rm -rf $(VENV) demo_out bench/_work
