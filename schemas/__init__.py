"""The contracts of the pipeline: events on the log, webhook payloads, read-model tables.

This package is the bottom layer: it imports nothing else of the project.
"""
