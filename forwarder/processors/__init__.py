"""Filebeat-named processors that parse or reshape events, usable from any input's `processors:`."""
