"""End-to-end acknowledgement, server side: after a batch is committed, ingest tells each device which of its events
are stored (PROTOCOL "Event acknowledgement"), so the device deletes only those from its outbox.

An ack lists ranges of consecutive seqs in the order they arrived, each with the id of its last event: the device
applies a range only if it holds that seq with that id, so an ack meant for an earlier outbox (reset, or another
device using the same id) deletes nothing.
"""

from __future__ import annotations

from footfall.messages import encode_json

Range = tuple[int, int, str]  # (first seq, last seq, id of the event with the last seq)


def seq_ranges(events: list[tuple[int, str]]) -> list[Range]:
    """(seq, id) in arrival order -> ranges of consecutive seqs. A resend (seq going back) starts a new range."""
    out: list[Range] = []
    for seq, event_id in events:
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq, event_id)
        else:
            out.append((seq, seq, event_id))
    return out


def ack_payload(ranges: list[Range], refused: str | None = None) -> bytes:
    body: dict = {"v": 1, "ranges": [list(r) for r in ranges]}
    if refused:
        body["refused"] = refused
    return encode_json(body)
