# Two commands matter: `make run` starts the app, `make test` runs the whole suite.
# Both create .venv on first use. PyTorch is installed first from its CPU wheel, so that
# pip never resolves the multi-GB CUDA build.
SHELL := /bin/bash
# pipefail: a failing pip is a failing build, even though its harmless location warnings are filtered.
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test install lint bench screenshots package package-smoke clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0 2>&1 | { grep -v "is ignored" || true; }
	$(PIP) install -e '.[dev]' 2>&1 | { grep -v "is ignored" || true; }
	$(PY) -c "import torch, cv2, PySide6; assert not torch.version.cuda, 'a CUDA build of torch was installed'"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) main.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/ghostface bench --source ../shared/data/demo/short_hamilton_clip.mp4

# The PNGs of docs/screenshots at 100 % and 150 % on a virtual 1366x768 screen (ARGS="--only face_picker").
screenshots: $(STAMP)
	GHOSTFACE_MODEL_PATH=$${GHOSTFACE_MODEL_PATH:-../shared/models} $(PY) tools/screenshots.py $(ARGS)

# Both build the one-folder bundle and then start it offscreen on the demo clip (packaging/smoke.sh).
package: $(STAMP)
	bash packaging/build.sh
	SMOKE_SKIP_BUILD=1 bash packaging/smoke.sh

package-smoke: $(STAMP)
	bash packaging/smoke.sh

clean:
	rm -rf build dist .pytest_cache
