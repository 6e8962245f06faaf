"""Small shipped files: the open hand model and the default engine checkpoint."""
