"""The links to peer e-ports, read from the ``link:`` of each ``peer-eport`` participant."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from exchanger.config.model import LinkSettings
from exchanger.config.problems import Problems
from exchanger.participants import Registry

DEFAULT_RECONNECT_DELAY = 5
LINK_PASSWORD = "link-password"


def links_from(data: dict, base: Path, keys_dir: Path, registry: Registry, problems: Problems) -> tuple[LinkSettings, ...]:
    """One LinkSettings per peer e-port with a link; a link on any other participant is a problem."""
    links = []
    specs = data.get("participants")
    for pid, spec in (specs if isinstance(specs, dict) else {}).items():
        link = (spec or {}).get("link") if isinstance(spec, dict) else None
        if not isinstance(link, dict) or pid not in registry:
            continue
        at = f"participants.{pid}.link"
        if registry.get(pid).kind != "peer-eport":
            problems.add(at, "only a participant of kind peer-eport has a link (copies to anyone else wait in its mailbox)")
            continue
        url = str(link.get("url", ""))
        parts = urlsplit(url)
        if not parts.username or parts.password is not None or not parts.hostname:
            problems.add(
                f"{at}.url",
                "must name the peer's host and the user it registered for this exchange, without a password "
                "(amqp://USER@HOST:PORT/VHOST; the password goes in password_file)",
            )
            continue
        password_file = base / str(link["password_file"]) if "password_file" in link else keys_dir / pid / LINK_PASSWORD
        delay = link.get("reconnect_delay", DEFAULT_RECONNECT_DELAY)
        links.append(LinkSettings(pid, url, password_file, delay if isinstance(delay, int) else DEFAULT_RECONNECT_DELAY))
    return tuple(links)
