"""Developer tools beside the add-on (not part of the extension zip): the Cycles render driver of the rendered clips."""
