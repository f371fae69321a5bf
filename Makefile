# ddw_detectron: `make demo` (the main job) and `make test` each build .venv when needed.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The environment is rebuilt when any of these files changes (the stamp's name is their hash).
ENV_FILES := requirements.txt requirements-dev.txt projects/DDWLab/requirements.txt \
	projects/DDWLab/pyproject.toml setup.py pyproject.toml scripts/setup_env.sh scripts/install_detectron2.py \
	ddw_detectron/compat/detectron2_C.py
ENV_HASH := $(shell cat $(ENV_FILES) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.ddw-env-$(ENV_HASH)
DEMO_OUTPUT ?= output/demo
# RESTART=1 starts the demo over instead of reusing its finished steps.
DEMO_FLAGS := $(if $(RESTART),--restart,)
PYTEST_ARGS ?=
# make test runs the suite in one single-threaded process per CPU (pytest-xdist, each file in
# one process; on 2 cores nearly twice as fast as one process with 2 threads). TEST_WORKERS=0:
# one process, torch's default threads.
TEST_WORKERS ?= logical

.PHONY: setup test test-installed lint format demo demo-data demo-pretrain demo-handoff demo-detect demo-report bench \
	compare device-check clean

setup: $(STAMP)

$(STAMP):
	@bash scripts/setup_env.sh "$(PYTHON)" "$(VENV)" "$(STAMP)"

test: $(STAMP)
	$(if $(filter 0,$(TEST_WORKERS)),,OMP_NUM_THREADS=1) $(PY) -m pytest tests \
		-n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The library's tests against its wheel (and the lab's) installed apart from the clone, from the
# committed files: scripts/test_installed.sh.
test-installed: $(STAMP)
	OMP_NUM_THREADS=1 bash scripts/test_installed.sh $(PY) -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# ruff (pyproject.toml: line length 100, import order): lint fails on any finding or unformatted file.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix --select I .
	$(VENV)/bin/ruff format .

# The main job: data -> pretraining -> hand-off -> detection -> report (scripts/run_demo.py).
demo: $(STAMP)
	$(PY) scripts/run_demo.py --output $(DEMO_OUTPUT) $(DEMO_FLAGS)

# Each step on its own (they read what the steps before them wrote into DEMO_OUTPUT).
demo-data demo-pretrain demo-handoff demo-detect demo-report: demo-%: $(STAMP)
	$(PY) scripts/run_demo.py --output $(DEMO_OUTPUT) --steps $*

bench: $(STAMP)
	$(PY) scripts/benchmark.py --arch R-50 --batch-size 2 --image-size 512 --repeats 10 --compile \
		--classification cpu \
		--markdown BENCHMARKS.md --json output/benchmark.json

# DDW against the chain, the learned static DAG, its frozen and shuffled wiring: 10 classification
# seeds, 5 detection seeds (about 60 training runs: a day on a 2-core CPU, run it in parts):
# output/compare/ and EVIDENCE.md. Rerun to resume; finished runs are reused.
compare: $(STAMP)
	$(PY) scripts/compare.py --output output/compare --evidence EVIDENCE.md

# The prepared GPU check (a few minutes on one GPU): output/device_check/device_check.md, a
# section for BENCHMARKS.md. On a CPU: make device-check DEVICE_CHECK_FLAGS=--dry
device-check: $(STAMP)
	$(PY) scripts/device_check.py --output output/device_check $(DEVICE_CHECK_FLAGS)

clean:
	rm -rf $(VENV) output
