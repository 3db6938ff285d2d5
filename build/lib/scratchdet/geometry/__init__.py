"""Pure geometry and part localisation: tile grids, box mapping and merging, the part region."""
