"""Settings of the `webhook` input, named as in Filebeat's `http_endpoint` input where it has them."""

from __future__ import annotations

from dataclasses import dataclass

from forwarder.schema.section import Section

HMAC_TYPES = ("sha256", "sha1")


@dataclass(frozen=True)
class WebhookConfig:
    listen_address: str
    listen_port: int
    url: str
    prefix: str
    """The field the JSON body goes under (Filebeat's default `json`)."""
    secret_header: str | None
    secret_value: str | None
    hmac_header: str | None
    hmac_key: str | None
    hmac_type: str
    hmac_prefix: str
    id_header: str | None
    """A request header whose value names the delivery (GitHub's X-GitHub-Delivery): the events' stable id."""
    max_body_size: int
    ack_timeout: float
    retry_after: int


def parse_config(section: Section) -> WebhookConfig:
    secret = section.section("secret")
    hmac = section.section("hmac")
    config = WebhookConfig(
        listen_address=section.string("listen_address", "127.0.0.1"),
        listen_port=section.integer("listen_port", 8080, minimum=0, maximum=65535),
        url=section.string("url", "/"),
        prefix=section.string("prefix", "json"),
        secret_header=secret.string("header", None),
        secret_value=secret.string("value", None),
        hmac_header=hmac.string("header", None),
        hmac_key=hmac.string("key", None),
        hmac_type=hmac.string("type", "sha256", choices=HMAC_TYPES),
        hmac_prefix=hmac.string("prefix", ""),
        id_header=section.string("id_header", None),
        max_body_size=section.size("max_body_size", 10 * 1024 * 1024),
        ack_timeout=section.duration("ack_timeout", 30.0),
        retry_after=section.integer("retry_after", 5, minimum=1),
    )
    secret.finish()
    hmac.finish()
    if (config.secret_header is None) != (config.secret_value is None):
        section.error("secret", "needs both header and value")
    if (config.hmac_header is None) != (config.hmac_key is None):
        section.error("hmac", "needs both header and key")
    if not config.url.startswith("/"):
        section.error("url", f"must be a path starting with / (got {config.url!r})")
    if config.ack_timeout <= 0:
        section.error("ack_timeout", "must be a positive duration")
    return config


def default_id(config: WebhookConfig) -> str:
    return f"webhook-{config.listen_port}{config.url}"
