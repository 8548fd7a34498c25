"""A log forwarder for security logs that drops in where Filebeat runs."""

__version__ = "0.1.0"
