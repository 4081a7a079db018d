"""A write of the outreach files that fails part-way, for the all-or-nothing tests."""

from __future__ import annotations


def fail_on_write(monkeypatch, n: int) -> None:
    """Make the `n`-th file written by `churnguard.outreach.frames` fail with ``OSError("disk full")`` once complete."""
    import churnguard.outreach.frames as frames

    real_write = frames._write
    calls = []

    def write_then_fail(frame, tmp, suffix):
        calls.append(tmp)
        real_write(frame, tmp, suffix)
        if len(calls) == n:
            raise OSError("disk full")

    monkeypatch.setattr(frames, "_write", write_then_fail)
