"""Scoring results against ground truth: AP50, COCO mAP, MOT metrics."""
