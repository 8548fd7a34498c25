#!/bin/sh
# /usr/bin/forwarder of the .deb and .rpm: the packaged runtime with the installed paths, as
# Filebeat's /usr/bin/filebeat does. --path.* flags given on the command line win over these.
exec /opt/forwarder/venv/bin/python -I -m forwarder \
    --path.home /usr/share/forwarder \
    --path.config /etc/forwarder \
    --path.data /var/lib/forwarder \
    --path.logs /var/log/forwarder \
    "$@"
