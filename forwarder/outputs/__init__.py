"""Output types; registered as `forwarder.outputs` entry points (setup.cfg)."""
