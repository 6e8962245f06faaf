"""Developer tools beside the add-on, not part of the extension zip: the headless capture driver of
``dahyf demo``, the Cycles render driver of the rendered clips, and the benchmarks."""
