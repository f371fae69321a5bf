# ddw_detectron: `make demo` (the main job) and `make test` each build .venv when needed.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
# The environment is rebuilt when any of these files changes (the stamp's name is their hash).
ENV_FILES := requirements.txt setup.py scripts/setup_env.sh scripts/install_detectron2.py \
	ddw_detectron/compat/detectron2_C.py
ENV_HASH := $(shell cat $(ENV_FILES) | sha256sum | cut -c1-16)
STAMP := $(VENV)/.ddw-env-$(ENV_HASH)
DEMO_OUTPUT ?= output/demo
PYTEST_ARGS ?=

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP):
	@bash scripts/setup_env.sh "$(PYTHON)" "$(VENV)" "$(STAMP)"

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) scripts/train_net.py --config-file configs/Demo/faster_rcnn_DDW_R_18_FPN_shapes.yaml \
		OUTPUT_DIR $(DEMO_OUTPUT)

bench: $(STAMP)
	$(PY) scripts/benchmark.py --arch R-50 --batch-size 2 --image-size 512 --repeats 10 --markdown BENCHMARKS.md --json output/benchmark.json

clean:
	rm -rf $(VENV) output
