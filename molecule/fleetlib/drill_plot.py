"""A drill's record drawn as one PNG: task completions per second, each broker's state in each HAProxy, the task
queue's ready messages and consumers, with the fault, the heal and every alert marked.

The PNG carries the SHA-256 of the record it was drawn from (a text chunk, `DIGEST_KEY`), so a test or a reader can
tell which run's data a picture shows.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a CI runner
import matplotlib.pyplot as plt
from matplotlib.patches import Patch
from PIL import Image

from fleetlib.drill import alert_groups

DIGEST_KEY = "celery-fleet-drill-sha256"
STATE_COLOURS = {"UP": "#2ca02c", "DOWN": "#d62728", "MAINT": "#7f7f7f", "DRAIN": "#ff7f0e", "NOLB": "#ff7f0e"}
NO_ANSWER = "#c7c7c7"


def record_digest(record: dict[str, Any]) -> str:
    """The record's SHA-256, independent of how its JSON file is laid out."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _state_rows(record: dict[str, Any]) -> list[tuple[str, list[tuple[float, float, str]]]]:
    """(row label, [(start, width, colour)]) per proxy and broker, from the samples."""
    rows = []
    for proxy, samples in sorted(record["series"]["haproxy"].items()):
        servers = sorted({server for _, states in samples for server in states})
        for server in servers:
            spans = []
            for (when, states), (later, _) in zip(samples, [*samples[1:], [record["ended_s"], {}]], strict=True):
                colour = STATE_COLOURS.get(states.get(server, ""), NO_ANSWER)
                spans.append((when, max(later - when, 0.01), colour))
            rows.append((f"{proxy}: {server}", spans))
    return rows


def _mark(axes: list[Any], record: dict[str, Any]) -> None:
    fired = alert_groups(record, "fired_s")
    for ax in axes:
        ax.axvline(0.0, color="#d62728", linewidth=1.5)
        ax.axvline(record["healed_s"], color="#2ca02c", linewidth=1.5)
        for when, *_ in fired:
            ax.axvline(when, color="#ff7f0e", linestyle="--", linewidth=1)
    top = axes[0]
    top.text(0.0, 1.02, "fault", color="#d62728", transform=top.get_xaxis_transform(), ha="center")
    top.text(record["healed_s"], 1.02, "heal", color="#2ca02c", transform=top.get_xaxis_transform(), ha="center")
    for number, (when, name, count, _) in enumerate(fired):
        label = f"{name} x{count}" if count > 1 else name
        top.text(when, 1.08 + 0.07 * number, label, color="#ff7f0e", fontsize=7,
                 transform=top.get_xaxis_transform(), ha="center")  # fmt: skip


def draw(record: dict[str, Any], path: Path) -> Path:
    """Draw the record to `path` (PNG), its digest in the file's metadata."""
    rows = _state_rows(record)
    fig, (done, states, queue) = plt.subplots(
        3, 1, figsize=(12, 9), sharex=True, gridspec_kw={"height_ratios": [3, max(2, len(rows) * 0.45), 2]}
    )
    seconds = record["series"]["completions_per_s"]
    done.bar([t for t, _ in seconds], [n for _, n in seconds], width=1.0, align="edge", color="#1f77b4")
    done.set_ylabel("tasks completed / s")
    for number, (_, spans) in enumerate(rows):
        states.broken_barh([(start, width) for start, width, _ in spans], (number - 0.4, 0.8),
                           facecolors=[colour for _, _, colour in spans])  # fmt: skip
    states.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    states.set_ylim(-0.6, len(rows) - 0.4)
    states.set_ylabel("HAProxy's view")
    legend = [Patch(color=colour, label=state) for state, colour in STATE_COLOURS.items() if state != "NOLB"]
    states.legend(handles=[*legend, Patch(color=NO_ANSWER, label="no answer")], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=7)  # fmt: skip
    ready, consumers = record["series"]["queue_ready"], record["series"]["queue_consumers"]
    queue.plot([t for t, _ in ready], [v for _, v in ready], color="#9467bd", label="ready messages")
    queue.set_ylabel("ready messages")
    queue.set_ylim(0, max([v for _, v in ready] + [1]) * 1.25)
    twin = queue.twinx()
    twin.step([t for t, _ in consumers], [v for _, v in consumers], where="post", color="#8c564b", label="consumers")
    twin.set_ylabel("consumers")
    twin.set_ylim(0, max([v for _, v in consumers] + [1]) * 1.25)
    queue.legend(handles=[*queue.get_lines(), *twin.get_lines()], loc="upper left", bbox_to_anchor=(1.06, 1.0),
                 fontsize=7)  # fmt: skip
    queue.set_xlabel("seconds from the fault")
    queue.set_xlim(record["started_s"], record["ended_s"])
    _mark([done, states, queue], record)
    fig.suptitle(f"{record['fault']} on {record['target']} ({record['recorded']}): longest stall "
                 f"{record['longest_stall_s']} s, {record['tasks_lost']} of {record['tasks_published']} tasks lost",
                 y=0.995)  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100, metadata={DIGEST_KEY: record_digest(record)})
    plt.close(fig)
    return path


def png_digest(path: Path) -> str:
    """The record digest a drill PNG carries ("" when it carries none)."""
    with Image.open(path) as image:
        return str(image.info.get(DIGEST_KEY, ""))


def picture_problems(path: Path, record: dict[str, Any]) -> list[str]:
    """What is wrong with a drill's PNG: not a valid PNG, too small, (nearly) blank, or not drawn from `record`."""
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            kind, size = image.format, image.size
            colours = len(image.convert("RGB").getcolors(maxcolors=1 << 16) or [])
    except (OSError, SyntaxError) as error:  # Pillow's errors for a broken or truncated file
        return [f"{path} is not a valid image: {error}"]
    problems = [f"{path} is a {kind}, not a PNG"] if kind != "PNG" else []
    problems += [f"{path} is only {size[0]}x{size[1]} pixels"] if min(size) < 600 else []
    problems += [f"{path} has {colours} colours: (nearly) blank"] if colours <= 20 else []
    if png_digest(path) != record_digest(record):
        problems.append(f"{path} was not drawn from this record")
    return problems
