"""Images in and out: dataset sources, held-out splits, the prepared folder, pixel conversions, sample files."""
