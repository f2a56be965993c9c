"""Serving the console from the daemon: a production WSGI server (cheroot, with TLS) in its own threads."""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass

import structlog
from cheroot import wsgi

from exchanger.config.console import ConsoleSettings
from exchanger.console.services import ConsoleServices
from exchanger.console.users import FIRST_ADMIN, AccountError, UserStore

log = structlog.get_logger("exchanger.console")

THREADS = 4


@dataclass
class ConsoleServer:
    """A running console: its address, and how to stop it."""

    server: wsgi.Server
    settings: ConsoleSettings
    services: ConsoleServices
    sampler: object

    @property
    def address(self) -> str:
        """The URL an operator opens (with the port actually bound)."""
        from dataclasses import replace

        return replace(self.settings, port=self.server.bind_addr[1]).address

    def stop(self) -> None:
        """Stop serving and close the message log."""
        self.sampler.stop()
        self.server.stop()
        self.services.close()


def reload_this_daemon() -> None:
    """Ask the daemon to reload its configuration, as SIGHUP does (handled on its main thread)."""
    os.kill(os.getpid(), signal.SIGHUP)


def start_console(settings: ConsoleSettings, services: ConsoleServices) -> ConsoleServer | None:
    """Start the console in background threads; None (and an error event) when it cannot listen."""
    from exchanger.console.app import create_app

    try:
        first_password = UserStore(settings.users_file).ensure_first_admin()
    except (AccountError, OSError) as exc:
        log.error("console.unavailable", error=str(exc))
        return None
    app = create_app(settings, services)
    server = wsgi.Server((settings.bind, settings.port), app, numthreads=THREADS, server_name="exchanger-console")
    if settings.tls:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(str(settings.tls_cert), str(settings.tls_key))
    try:
        server.prepare()
    except OSError as exc:
        log.error("console.unavailable", bind=settings.bind, port=settings.port, error=str(exc))
        return None
    threading.Thread(target=server.serve, name="exchanger-console", daemon=True).start()
    sampler = app.config["SAMPLER"]
    sampler.start()
    running = ConsoleServer(server, settings, services, sampler)
    # The terminal lines first: whoever waits for the event finds the one-time password already written.
    announce(running.address, first_password)
    log.info("console.listening", address=running.address, tls=settings.tls)
    return running


def announce(address: str, first_password: str | None) -> None:
    """Tell the operator at the terminal where the console is, and the first admin's one-time password once."""
    lines = [f"==> the operators' console: {address}"]
    if first_password:
        # Said on the terminal only, never in the log: the log may travel further than the operator.
        lines.append(f"==> first sign-in: account {FIRST_ADMIN}, one-time password {first_password} "
                     "(you choose your own at first sign-in)")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
