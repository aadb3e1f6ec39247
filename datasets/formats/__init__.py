"""Readers and writers of the dataset formats people actually have: YOLO, COCO and MOTChallenge."""
