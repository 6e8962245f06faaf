# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make demo   - the main job: capture the bundled sample video into a .blend (no GPU, no download)
#   make test   - the whole test suite
# Both create (once) and reuse the virtual environment .venv/ with the pinned stack.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: venv demo test bench addon clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dahyf demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q tests

bench: $(STAMP)
	$(VENV)/bin/dahyf bench all

addon: $(STAMP)
	$(PY) build_addon.py --out dist

clean:
	rm -rf $(VENV) dist $(OUT) .pytest_cache
