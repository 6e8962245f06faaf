"""``python -m dahyf.hand.open_hand``: rebuild engine/assets/open_hand_{right,left}.npz."""
from .build import main

raise SystemExit(main())
