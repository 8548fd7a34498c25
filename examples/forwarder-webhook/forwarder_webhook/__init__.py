"""An example forwarder plugin: the `webhook` input, the `github_audit` module and its processor."""
