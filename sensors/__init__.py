"""Sensors: the drop folder."""
