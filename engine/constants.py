"""Numbers that several parts of the engine share, each named once (DESIGN.md §3).

Facts that belong to one module stay there; these cross module boundaries (capture crops, the
network, training data), so they live here, free of any heavy import.
"""

#: Side of the network input crop, px (s_p in the paper).
CROP_SIZE = 224
#: Side of an image crop around a hand relative to the longer side of its landmarks' (or joints')
#: bounding box (capture crops and training crops alike).
CROP_PADDING = 1.5
#: Typical weak-perspective scale s of a hand filling its crop (normalised crop units per metre,
#: ≈ 2 / hand extent in m): the regressors' camera starts there.
MEAN_WEAK_SCALE = 10.0
