"""Tunables of the media engine, in one frozen dataclass.

Defaults follow what browsers and mediasoup do; tests shorten the periods so
reports show up in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EngineSettings"]


@dataclass(frozen=True)
class EngineSettings:
    #: Mean period of Sender/Receiver Reports; each interval is randomized to
    #: 0.5..1.5 times this (RFC 3550 section 6.2).
    rtcp_interval: float = 1.0
    #: Period of transport-wide-cc feedback and of NACKs toward producers.
    #: Chrome's send-side BWE wants feedback every 50..100 ms.
    feedback_interval: float = 0.05
    #: At most one keyframe request per producer within this many seconds.
    keyframe_request_interval: float = 1.0
    #: Packets a consumer keeps to answer NACKs, and for how long (seconds).
    retransmission_packets: int = 600
    retransmission_age: float = 2.0
    #: A lost packet is NACKed to its producer for at most this long / this often.
    nack_max_age: float = 1.0
    nack_max_retries: int = 10
    #: Gap between two NACKs of the same packet before an RTT is known (seconds).
    nack_retry_interval: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "rtcp_interval",
            "feedback_interval",
            "keyframe_request_interval",
            "retransmission_age",
            "nack_max_age",
            "nack_retry_interval",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"EngineSettings.{name} must be positive")
        if self.retransmission_packets < 1 or self.nack_max_retries < 1:
            raise ValueError("EngineSettings packet and retry counts must be at least 1")
