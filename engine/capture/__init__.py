"""Video capture pipeline: decode, hand tracking, crops, batched engine, confidence gate, filters, Take I/O."""
