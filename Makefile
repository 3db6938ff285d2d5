# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both create or reuse .venv and install what they need.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= outputs/demo
# The sample: $SCRATCHDET_SAMPLE, else ./data/scratch-sample (fetched when absent),
# else a read-only shared copy next to the checkout when there is one.
SAMPLE ?= $(or $(SCRATCHDET_SAMPLE),$(if $(wildcard data/scratch-sample/annotations),data/scratch-sample,$(if $(wildcard ../shared/data/scratch-sample/annotations),../shared/data/scratch-sample,data/scratch-sample)))
export SCRATCHDET_SAMPLE := $(SAMPLE)

.PHONY: venv demo test lint clean-venv

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: pip takes these builds from local disk (see DEVELOPERS.md)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

$(SAMPLE)/annotations/train.json:
	$(BIN)/scratchdet data fetch-sample $(SAMPLE)

demo: venv $(SAMPLE)/annotations/train.json
	$(BIN)/scratchdet demo --sample $(SAMPLE) --out $(OUT)

lint: venv
	$(BIN)/ruff check src tests

test: venv lint
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
