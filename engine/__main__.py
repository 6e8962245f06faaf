"""`python -m dahyf` = the `dahyf` console script."""
import sys

from .cli import main

sys.exit(main())
