"""What this copy of the extension was built for; build_addon.py rewrites this file in each zip.

A zip's wheels are compiled for one Python (its tier: py311 for Blender 4.2-5.0, py313 for
Blender 5.1+), so ``compat.check_blender_version`` refuses any other at register. This committed
copy is a development checkout's: no tier, any Blender the add-on supports.
"""
TIER = None         # 'py311' | 'py313'
PYTHON = None       # (3, 11): the Python the zip's wheels are for
BLENDER_MIN = None  # (4, 2, 0): the manifest's blender_version_min
BLENDER_MAX = None  # (5, 1, 0): the manifest's blender_version_max, the first Blender not supported
PLATFORM = None     # 'linux-x64' | 'windows-x64' | 'macos-arm64'
VARIANT = None      # 'cpu' | 'cuda' | 'local'
