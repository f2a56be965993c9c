"""What the benchmark ran on: cores, CPU model, memory, Python, RabbitMQ and library versions, load."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def rabbitmq_version() -> str:
    try:
        done = subprocess.run(["rabbitmqctl", "-q", "version"], capture_output=True, text=True, timeout=30)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip().splitlines()[-1]
        done = subprocess.run(["rabbitmqctl", "status"], capture_output=True, text=True, timeout=30)
        found = re.search(r"RabbitMQ version: (\S+)", done.stdout)
        return found.group(1) if found else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def describe() -> dict:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": round(_memory_gb(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "rabbitmq": rabbitmq_version(),
        "libraries": {p: _version(p) for p in ("lxml", "signxml", "cryptography", "pika", "xmlschema")},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_average_at_start": [round(v, 2) for v in load_average()],
    }
