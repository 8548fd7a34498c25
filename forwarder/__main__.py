from forwarder.cli import entry_point

entry_point()
