"""What TLS and the proxy cost in throughput: confirmed publishes and messages round trip, four ways.

The roles scenario's tests/test_tls_cost.py measures, from one worker host, in one run: straight to a broker
and through a proxy, each in clear and over TLS (plain listeners are on in that scenario only, to compare).
Each way publishes the same messages to its own quorum queue, one at a time with publisher confirms, while a
consumer on a second connection the same way acknowledges them. It writes .cache/tls-cost/results.json.

    python tools/tls_cost.py            # the latest results, as the docs would quote them
    python tools/tls_cost.py --adopt    # copy them to tools/reference/tls-cost.json and docs/security.md

tests/test_generated_docs.py checks that docs/security.md quotes the committed reference.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from generated_blocks import OneBlockTool

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_DIR / ".cache" / "tls-cost" / "results.json"
REFERENCE = PROJECT_DIR / "tools" / "reference" / "tls-cost.json"
DOC = PROJECT_DIR / "docs" / "security.md"
BEGIN, END = "<!-- tls-cost:begin -->", "<!-- tls-cost:end -->"
# The four ways, in the table's order: (name, what it is).
WAYS = {
    "direct-plain": "straight to a broker, in clear",
    "direct-tls": "straight to a broker, TLS",
    "proxy-plain": "through HAProxy, in clear both hops",
    "proxy-tls": "through HAProxy, TLS both hops (re-encrypted)",
}
# The ratios quoted: (numerator, denominator, what it shows).
RATIOS = [
    ("direct-tls", "direct-plain", "TLS against plain, straight to a broker"),
    ("proxy-tls", "proxy-plain", "TLS against plain, through the proxy"),
    ("proxy-tls", "direct-plain", "the deployment as shipped against plain and direct"),
    ("proxy-plain", "direct-plain", "the proxy against direct, in clear"),
]
GOAL = 0.9


def ratios(results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(what, publish ratio, round-trip ratio) for each quoted pair."""
    ways = results["ways"]
    return [
        (
            what,
            round(ways[top]["publish_per_s"] / ways[bottom]["publish_per_s"], 2),
            round(ways[top]["round_trip_per_s"] / ways[bottom]["round_trip_per_s"], 2),
        )
        for top, bottom, what in RATIOS
    ]


def block(results: dict[str, Any]) -> str:
    """The table docs/security.md quotes, between its markers."""
    rows = [
        BEGIN,
        f"{results['messages']} messages of {results['body_bytes']} bytes each way, the best of "
        f"{results['rounds']} rounds, from `{results['client']}` (Debian {results['debian']}, "
        f"RabbitMQ {results['rabbitmq']}, HAProxy {results['haproxy']}):",
        "",
        "| way | confirmed publishes/s | messages round trip/s |",
        "|---|---|---|",
        *(
            f"| {WAYS[name]} | {results['ways'][name]['publish_per_s']} | {results['ways'][name]['round_trip_per_s']} |"
            for name in WAYS
        ),
        "",
        f"| ratio | publishes | round trip | goal {GOAL} |",
        "|---|---|---|---|",
        *(
            f"| {what} | {publish} | {round_trip} | {'met' if min(publish, round_trip) >= GOAL else 'missed'} |"
            for what, publish, round_trip in ratios(results)
        ),
        END,
    ]
    return "\n".join(rows)


TOOL = OneBlockTool(RESULTS, REFERENCE, DOC, BEGIN, END, block, "run `make molecule SCENARIOS=roles` first")
generated = TOOL.generated


def main(argv: list[str] | None = None) -> int:
    return TOOL.main(argv, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main())
