"""Editing photographs (DESIGN §7): the pipeline, regions and their windows, paste-back."""
