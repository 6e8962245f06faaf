"""Fixtures for the add-on tests: the real bpy module, the extension installed from its zip.

The extension is built with ``build_addon.py --variant local`` (the engine as a wheel; the heavy
dependencies come from the running venv) and installed with Blender's own
``extensions.package_install_files`` into the throw-away profile of ``BLENDER_USER_RESOURCES``
(set by tests/conftest.py before bpy is imported).
"""
from __future__ import annotations

import atexit
import importlib
import os
import sys
import tempfile

import pytest

# Before bpy is imported (this conftest loads before tests/conftest.py's pytest_configure runs):
# Blender must never see a real user profile.
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="dahyf-blender-user-"))

bpy = pytest.importorskip("bpy", reason="Blender's Python module (bpy) is not installed")


def _keep_modules_until_their_globals_are_cleared():
    """bpy 4.2 runs Blender's exit code only when the ``bpy`` module object is freed, and
    segfaults in static destructors after Python has gone if it never is. Python frees it only
    once every module namespace holding ``bpy`` has been cleared, but it clears the namespaces of
    live modules only: a module that dies early (no references but ``sys.modules``) leaves its
    namespace to whatever still holds its functions and classes, e.g. objects Rigify leaves in
    Blender after it is disabled, or ``typing``'s caches after a glTF import. Holding every module
    here (``sys`` is cleared last) lets Python clear them all first. Later bpy (5.0.1 here)
    detects the exit itself (``_bpy_detect_exit_singleton``) and needs none of this.
    """
    sys._dahyf_modules_kept_for_bpy_exit = [m for name, m in sys.modules.items() if name != "bpy"]


if not hasattr(sys.modules["bpy.types"], "_bpy_detect_exit_singleton"):
    atexit.register(_keep_modules_until_their_globals_are_cleared)

REPO_ID = "user_default"
EXT_ID = "dahyf_blender"
EXT_MODULE = f"bl_ext.{REPO_ID}.{EXT_ID}"


@pytest.fixture(scope="session")
def build_addon(repo_dir):
    """The repository's build_addon.py, imported as a module."""
    sys.path.insert(0, str(repo_dir))
    try:
        import build_addon
    finally:
        sys.path.remove(str(repo_dir))
    return build_addon


@pytest.fixture(scope="session")
def addon_zip(tmp_path_factory, build_addon):
    return build_addon.build(tmp_path_factory.mktemp("dist"), variant="local")


@pytest.fixture(scope="session")
def addon(addon_zip):
    """The installed and enabled extension's package module."""
    if EXT_MODULE not in bpy.context.preferences.addons:
        result = bpy.ops.extensions.package_install_files(filepath=str(addon_zip), repo=REPO_ID,
                                                          enable_on_install=True)
        assert result == {"FINISHED"}
    assert EXT_MODULE in bpy.context.preferences.addons
    yield importlib.import_module(EXT_MODULE)
    # Unregister before the interpreter exits: bpy 4.2 as a module segfaults at teardown while
    # add-on classes are still registered.
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.preferences.addon_disable(module=EXT_MODULE)


@pytest.fixture
def ctx(addon):
    """An empty scene with the extension enabled and default preferences; no capture left running after."""
    bpy.ops.wm.read_homefile(use_empty=True)
    prefs = bpy.context.preferences.addons[EXT_MODULE].preferences
    prefs.mano_folder = ""
    prefs.checkpoint = os.environ.get("DAHYF_TEST_CHECKPOINT", "")
    yield bpy.context
    importlib.import_module(f"{EXT_MODULE}.ops_capture").stop_running_captures()


@pytest.fixture
def sub(addon):
    """Import a submodule of the installed extension: sub('keying')."""
    return lambda name: importlib.import_module(f"{EXT_MODULE}.{name}")


@pytest.fixture(scope="session")
def engine_available():
    """The capture engine loads (the bundled one, or $DAHYF_TEST_CHECKPOINT): see require_engine."""
    from blender_helpers import require_engine

    require_engine()
    return True
