"""Input types: one package or module per source; registered as `forwarder.inputs` entry points (setup.cfg)."""
