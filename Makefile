# Two entry points for a fresh machine: `make demo` (the main job) and `make test`.
# Both create or reuse .venv (the full install: training, eager inference, export) and install
# what they need. `make station-test` also builds .venv-station (`pip install scratchdet`, no
# torch) and runs the station's tests in it against a model exported in .venv.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STATION_VENV ?= .venv-station
SBIN := $(STATION_VENV)/bin
STATION_OUT ?= outputs/station-fixture
# Test files that need no torch: run in the station venv by `make station-test`.
STATION_TESTS := tests/station tests/test_artifact.py tests/test_io.py tests/test_imaging.py \
	tests/test_overlay.py \
	tests/geometry tests/report tests/inference/test_predictor.py tests/inference/test_tta.py \
	tests/data/test_cli.py tests/data/test_convert.py tests/data/test_fetch.py \
	tests/data/test_records.py tests/data/test_split.py tests/data/test_stats.py \
	tests/data/test_validate.py tests/evaluation/test_analysis.py \
	tests/evaluation/test_bootstrap.py tests/evaluation/test_cli.py \
	tests/evaluation/test_golden.py tests/evaluation/test_inline.py \
	tests/evaluation/test_part_level.py tests/evaluation/test_workflow.py \
	tests/evaluation/test_scope.py tests/evaluation/test_box_stats.py
OUT ?= outputs/demo
# The sample: $SCRATCHDET_SAMPLE, else ./data/scratch-sample (fetched when absent),
# else a read-only shared copy next to the checkout when there is one.
SAMPLE ?= $(or $(SCRATCHDET_SAMPLE),$(if $(wildcard data/scratch-sample/annotations),data/scratch-sample,$(if $(wildcard ../shared/data/scratch-sample/annotations),../shared/data/scratch-sample,data/scratch-sample)))
export SCRATCHDET_SAMPLE := $(SAMPLE)

.PHONY: venv station demo test lint station-test clean-venv

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: pip takes these builds from local disk (see DEVELOPERS.md)
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[train,openvino,ray,dev]'
	touch $@

venv: $(BIN)/.installed

# The station: `pip install scratchdet` with no extras (no torch), plus the test runner.
$(SBIN)/.installed: pyproject.toml
	test -x $(SBIN)/python || $(PYTHON) -m venv $(STATION_VENV)
	$(SBIN)/pip install -q --upgrade pip
	$(SBIN)/pip install -q -e . 'pytest>=8' 'httpx>=0.27'
	touch $@

station: $(SBIN)/.installed

$(SAMPLE)/annotations/train.json:
	$(BIN)/scratchdet data fetch-sample $(SAMPLE)

demo: venv $(SAMPLE)/annotations/train.json
	$(BIN)/scratchdet demo --sample $(SAMPLE) --out $(OUT)

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports

test: venv lint
	$(BIN)/python -m pytest -q

station-test: venv station $(SAMPLE)/annotations/train.json
	rm -rf $(STATION_OUT)
	$(BIN)/python -m tests.station.fixture $(STATION_OUT) $(SAMPLE)
	SCRATCHDET_STATION=1 SCRATCHDET_STATION_DIR=$(abspath $(STATION_OUT)) \
		$(SBIN)/python -m pytest -q $(STATION_TESTS)

clean-venv:
	rm -rf $(VENV) $(STATION_VENV)
