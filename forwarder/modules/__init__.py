"""Modules: one per product; registered as `forwarder.modules` entry points (setup.cfg)."""
