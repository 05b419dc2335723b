"""Scraping /metrics over HTTP and reading it with prometheus-client's own parser."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support import RunningServer

TIMEOUT = aiohttp.ClientTimeout(total=30)


@dataclass(frozen=True)
class Scraped:
    """One scrape: every sample by name and labels, and the families' types."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    types: dict[str, str]

    def value(self, name: str, **labels: str) -> float:
        """The sample `name` with exactly these labels (KeyError when there is none)."""
        return self.samples[name, frozenset(labels.items())]

    def has(self, name: str) -> bool:
        """Whether any sample is called `name`."""
        return any(found == name for found, _ in self.samples)

    def labelled(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Every sample called `name`, by its labels."""
        return {labels: v for (found, labels), v in self.samples.items() if found == name}


def parse(text: str) -> Scraped:
    """The exposition text as prometheus-client reads it."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return Scraped(samples, types)


async def scrape(url: str, tls: ssl.SSLContext | None = None) -> Scraped:
    """GET the metrics page and parse it."""
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.get(url, ssl=tls if tls is not None else True) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse(await response.text())


def metrics_url(server: RunningServer) -> str:
    """The /metrics address of an in-process server started with an HTTP listener."""
    assert server.app is not None
    assert server.app.http is not None
    return f"http://127.0.0.1:{server.app.http.port}/metrics"
