"""Trackers that fill the frames between detections, and track-id association."""
