# Two commands do everything on a fresh machine with Python 3.11, Python 3.13 and make:
#   make demo   - the main job: capture the bundled sample video into a .blend (no GPU, no download)
#   make test   - the whole test suite, in both Python tiers and three Blender versions
# Each tier has its own virtual environment with the pinned stack of its lock file, made once and
# reused (remade when the lock file changes):
#   .venv        Python 3.11, requirements.lock        bpy 5.0.1, torch, MediaPipe 0.10.21: everything
#   .venv-bpy42  Python 3.11, requirements-bpy42.lock  bpy 4.2.0 LTS; the rest from .venv
#   .venv313     Python 3.13, requirements-py313.lock  bpy 5.3.0, MediaPipe 1.2.3, no torch
OUT   ?= out

# The first interpreter of each version that runs: on PATH, then pyenv's, then the usual places.
# Override with e.g. `make test PYTHON313=/opt/python3.13/bin/python3.13`.
find_python = $(shell for p in python$(1) $$(pyenv root 2>/dev/null)/versions/$(1).*/bin/python$(1) \
    $(HOME)/.pyenv/versions/$(1).*/bin/python$(1) /usr/local/bin/python$(1) /usr/bin/python$(1) \
    /opt/homebrew/bin/python$(1); do "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' \
    >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
ifeq ($(origin PYTHON), undefined)
PYTHON := $(call find_python,3.11)
endif
ifeq ($(origin PYTHON313), undefined)
PYTHON313 := $(call find_python,3.13)
endif
need_python = @test -n "$($(1))" || { echo "Python $(2) not found: $(3) Install it (pyenv install $(2); \
    apt-get install python$(2) python$(2)-venv; or https://www.python.org/downloads/), or name it: \
    make test $(1)=/path/to/python$(2)" >&2; exit 1; }

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BPY42  := .venv-bpy42
VENV313 := .venv313
PY313  := $(VENV313)/bin/python

.PHONY: venv venv-bpy42 venv313 demo test test-bpy42 test-py313 bench addon addons clean

$(STAMP): requirements.lock pyproject.toml
	$(call need_python,PYTHON,3.11,the engine with torch and Blender 4.2-5.0 run on it.)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dahyf demo --out $(OUT)

# The whole suite on bpy 5.0.1 (Python 3.11), the Blender tests on Blender 4.2 LTS, then the whole
# suite on Python 3.13 with bpy 5.3.0 (tests that need torch are reported as skipped there).
test: $(STAMP) $(BPY42)/.installed $(VENV313)/.installed
	$(PY) -m pytest -q tests
	$(BPY42)/bin/python -m pytest -q tests/blender
	$(PY313) -m pytest -q tests

bench: $(STAMP)
	$(VENV)/bin/dahyf bench all

# The extension zip of each Python tier for this machine (Linux x64 here): py311 for Blender
# 4.2-5.0, py313 for 5.1+. Other platforms: python build_addon.py --tier py313 --platform windows-x64
addon: $(STAMP)
	$(PY) build_addon.py --out dist --tier py311
	$(PY) build_addon.py --out dist --tier py313

# Second test tier: the add-on against Blender 4.2 LTS (legacy action.fcurves). bpy 4.2.0 in its
# own venv; everything else (torch, the editable engine, setuptools) from .venv, added by a .pth
# (site.addsitedir, so .venv's own .pth files work) after bpy 4.2 on sys.path.
$(BPY42)/.installed: $(STAMP) requirements-bpy42.lock
	test -x $(BPY42)/bin/python || $(PYTHON) -m venv $(BPY42)
	$(BPY42)/bin/pip install -q --no-deps -r requirements-bpy42.lock
	$(BPY42)/bin/pip uninstall -q -y setuptools
	echo "import site; site.addsitedir('$(abspath $(VENV))/lib/python3.11/site-packages')" > $(BPY42)/lib/python3.11/site-packages/zz_dahyf_main_venv.pth
	touch $@

venv-bpy42: $(BPY42)/.installed

test-bpy42: $(BPY42)/.installed
	$(BPY42)/bin/python -m pytest -q tests/blender

# Third tier: Python 3.13 (Blender 5.1+), bpy 5.3.0, MediaPipe 1.2.3, no torch.
$(VENV313)/.installed: requirements-py313.lock pyproject.toml
	$(call need_python,PYTHON313,3.13,bpy 5.3.0 (Blender 5.1 and newer) needs it.)
	test -x $(PY313) || $(PYTHON313) -m venv $(VENV313)
	$(PY313) -m pip install -q -r requirements-py313.lock
	$(PY313) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv313: $(VENV313)/.installed

test-py313: $(VENV313)/.installed
	$(PY313) -m pytest -q tests

clean:
	rm -rf $(VENV) $(BPY42) $(VENV313) dist build $(OUT) .pytest_cache
