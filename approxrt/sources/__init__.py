"""Frame sources: files, image folders, cameras, network streams, synthetic scenes."""
