# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make demo   - the main job: capture the bundled sample video into a .blend (no GPU, no download)
#   make test   - the whole test suite
# Both create (once) and reuse the virtual environment .venv/ with the pinned stack.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out
BPY42  := .venv-bpy42

.PHONY: venv demo test bench addon clean venv-bpy42 test-bpy42

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dahyf demo --out $(OUT)

# The whole suite on bpy 5.0.1, then the Blender tests again on Blender 4.2 LTS (second tier below).
test: $(STAMP) $(BPY42)/.installed
	$(PY) -m pytest -q tests
	$(BPY42)/bin/python -m pytest -q tests/blender

bench: $(STAMP)
	$(VENV)/bin/dahyf bench all

addon: $(STAMP)
	$(PY) build_addon.py --out dist

# Second test tier: the add-on against Blender 4.2 LTS (legacy action.fcurves). bpy 4.2.0 in its
# own venv; everything else (torch, the editable engine, setuptools) from .venv, added by a .pth
# (site.addsitedir, so .venv's own .pth files work) after bpy 4.2 on sys.path.
$(BPY42)/.installed: $(STAMP)
	test -x $(BPY42)/bin/python || $(PYTHON) -m venv $(BPY42)
	$(BPY42)/bin/pip install -q --no-deps bpy==4.2.0
	$(BPY42)/bin/pip uninstall -q -y setuptools
	echo "import site; site.addsitedir('$(abspath $(VENV))/lib/python3.11/site-packages')" > $(BPY42)/lib/python3.11/site-packages/zz_dahyf_main_venv.pth
	touch $@

venv-bpy42: $(BPY42)/.installed

test-bpy42: $(BPY42)/.installed
	$(BPY42)/bin/python -m pytest -q tests/blender

clean:
	rm -rf $(VENV) $(BPY42) dist $(OUT) .pytest_cache
