"""Everything that reads or writes pictures: images, frame sources, outputs."""
