# Shared by the .deb postinst and the .rpm %post (included by packaging/build.sh): the `forwarder`
# system user, its data and log directories (0750, owned by it) and group read access to the config.
# Idempotent: runs on every install and upgrade.
if ! getent group forwarder >/dev/null; then
    groupadd --system forwarder
fi
if ! getent passwd forwarder >/dev/null; then
    useradd --system --gid forwarder --home-dir /var/lib/forwarder --no-create-home \
        --shell /usr/sbin/nologin --comment "forwarder log shipper" forwarder
fi
for dir in /var/lib/forwarder /var/log/forwarder; do
    mkdir -p "$dir"
    chown forwarder:forwarder "$dir"
    chmod 0750 "$dir"
done
# The config may hold credentials: root writes it, the forwarder's group reads it, nobody else.
# (Before the first unpack, in the .rpm's pre-install script, there is no config yet.)
if [ -d /etc/forwarder/modules.d ]; then
    chgrp forwarder /etc/forwarder /etc/forwarder/modules.d
    chmod 0750 /etc/forwarder /etc/forwarder/modules.d
    find /etc/forwarder -type f \( -name '*.yml' -o -name '*.yml.disabled' \) \
        -exec chgrp forwarder {} + -exec chmod g+r,o-rwx {} +
fi
