"""RtpListener: which producer an incoming packet is for (mediasoup's RtpListener), sans-I/O.

One per transport. Incoming RTP is matched, in this order, by

1. SSRC -- every SSRC signalled in a producer's ``encodings`` (media and RTX),
   and every SSRC learned below;
2. MID -- the MID header extension (RFC 8843 section 15) names the producer
   that signalled that ``mid``; inside it the RID extension names the encoding,
   the repaired-RID extension the encoding whose RTX stream this is (RFC 8852
   section 3.3). The producer binds the SSRC to that stream
   (:meth:`~.producer.Producer.learn_ssrc`) and the SSRC is remembered;
3. RID alone -- for a producer that signalled no ``mid``, a RID (or repaired
   RID) that only it uses.

Producers with a ``mid`` are found by MID and do not enter the RID table: a
browser sending two simulcast tracks uses the same RIDs (``r0``, ``r1``...)
in both, told apart by MID. Among producers without a ``mid`` a RID must be
unique on the transport.

Incoming RTCP is about a producer (a Sender Report, by the media SSRC the
browser sends with) or a consumer (NACK, PLI, FIR, report blocks, by the SSRC
we send it with): :meth:`media_stream` and :meth:`consumer` answer those.

Registering checks everything before changing anything: a producer or
consumer that collides is refused with ``ValueError`` and the tables stay
as they were.
"""

from __future__ import annotations

from typing import Any

from roomler.sfu.codecs import MID_URI, REPAIRED_RID_URI, RID_URI

from .consumer import Consumer
from .producer import Producer, ProducerStream

__all__ = ["RtpBinding", "RtpListener"]

#: (producer, its stream, whether the SSRC is that stream's RTX SSRC).
RtpBinding = tuple[Producer, ProducerStream, bool]


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("ascii", "replace")


class RtpListener:
    """The SSRC / MID / RID tables of one transport's producers, and its consumers by SSRC."""

    __slots__ = (
        "_consumers_by_ssrc",
        "_mid_ids",
        "_rid_ids",
        "_repaired_rid_ids",
        "mid_table",
        "rid_table",
        "ssrc_table",
    )

    def __init__(self) -> None:
        #: Read per packet by the transport (``ssrc_table.get(ssrc)``), so a plain dict.
        self.ssrc_table: dict[int, RtpBinding] = {}
        self.mid_table: dict[str, Producer] = {}
        self.rid_table: dict[str, Producer] = {}
        self._consumers_by_ssrc: dict[int, Consumer] = {}
        # The header extension ids the producers negotiated for MID, RID and repaired RID.
        self._mid_ids: tuple[int, ...] = ()
        self._rid_ids: tuple[int, ...] = ()
        self._repaired_rid_ids: tuple[int, ...] = ()

    # -- producers --------------------------------------------------------------

    def add_producer(self, producer: Producer) -> None:
        """Enter the producer's SSRCs, MID and RIDs; ValueError (nothing changed) on a clash."""
        bindings = producer.ssrc_bindings()
        rids = self._rids_to_table(producer)
        self._check_producer(producer, bindings, rids)
        for ssrc, stream, rtx in bindings:
            self.ssrc_table[ssrc] = (producer, stream, rtx)
        if producer.mid is not None:
            self.mid_table[producer.mid] = producer
        for rid in rids:
            self.rid_table[rid] = producer
        ids = producer.extension_ids
        self._mid_ids = _with(self._mid_ids, ids.get(MID_URI))
        self._rid_ids = _with(self._rid_ids, ids.get(RID_URI))
        self._repaired_rid_ids = _with(self._repaired_rid_ids, ids.get(REPAIRED_RID_URI))

    def _rids_to_table(self, producer: Producer) -> list[str]:
        if producer.mid is not None:
            return []
        return [stream.rid for stream in producer.streams if stream.rid is not None]

    def _check_producer(
        self, producer: Producer, bindings: list[tuple[int, ProducerStream, bool]], rids: list[str]
    ) -> None:
        for ssrc, _, _ in bindings:
            if ssrc in self.ssrc_table:
                raise ValueError(f"SSRC {ssrc} is already used by a producer of this transport")
        mid = producer.mid
        if mid is not None and mid in self.mid_table:
            raise ValueError(f"mid {mid!r} is already used by a producer of this transport")
        for rid in rids:
            if rid in self.rid_table:
                raise ValueError(
                    f"rid {rid!r} is already used by a producer of this transport without a mid"
                )
        ids = producer.extension_ids
        by_mid = mid is not None and MID_URI in ids
        by_rid = bool(rids) and (RID_URI in ids or REPAIRED_RID_URI in ids)
        if not bindings and not by_mid and not by_rid:
            raise ValueError(
                "rtpParameters need encodings[].ssrc, or a mid and the MID header extension, "
                "or encodings[].rid and the RID header extension"
            )

    def remove_producer(self, producer: Producer) -> None:
        for ssrc in [s for s, binding in self.ssrc_table.items() if binding[0] is producer]:
            del self.ssrc_table[ssrc]
        for table in (self.mid_table, self.rid_table):
            for key in [k for k, p in table.items() if p is producer]:
                del table[key]

    # -- RTP --------------------------------------------------------------------

    def get_producer(self, ssrc: int, extensions: dict[int, bytes]) -> RtpBinding | None:
        """Where a packet with this SSRC and these header extensions goes, or None."""
        binding = self.ssrc_table.get(ssrc)
        if binding is not None:
            return binding
        return self.learn(ssrc, extensions)

    def learn(self, ssrc: int, extensions: dict[int, bytes]) -> RtpBinding | None:
        """Bind an unknown SSRC by its MID, else RID, extension (see the module docstring)."""
        mid = _first_text(extensions, self._mid_ids)
        producer: Producer | None
        if mid is not None:  # a packet that names its MID is matched by it only
            producer = self.mid_table.get(mid)
            if producer is None:
                return None
            ids = producer.extension_ids
            rid = _text(extensions.get(ids.get(RID_URI, -1)))
            repaired = _text(extensions.get(ids.get(REPAIRED_RID_URI, -1)))
        else:
            rid = _first_text(extensions, self._rid_ids)
            repaired = _first_text(extensions, self._repaired_rid_ids)
            name = repaired if repaired is not None else rid
            producer = None if name is None else self.rid_table.get(name)
            if producer is None:
                return None
        learned = producer.learn_ssrc(ssrc, rid, repaired)
        if learned is None:
            return None
        binding = (producer, learned[0], learned[1])
        self.ssrc_table[ssrc] = binding
        return binding

    # -- RTCP -------------------------------------------------------------------

    def media_stream(self, ssrc: int) -> tuple[Producer, ProducerStream] | None:
        """The producer stream a browser sends media on with ``ssrc`` (its Sender Reports)."""
        binding = self.ssrc_table.get(ssrc)
        if binding is None or binding[2]:
            return None
        return binding[0], binding[1]

    def add_consumer(self, consumer: Consumer) -> None:
        if consumer.ssrc in self._consumers_by_ssrc:
            raise ValueError(f"consumer SSRC {consumer.ssrc} collides, try again")
        self._consumers_by_ssrc[consumer.ssrc] = consumer

    def remove_consumer(self, consumer: Consumer) -> None:
        if self._consumers_by_ssrc.get(consumer.ssrc) is consumer:
            del self._consumers_by_ssrc[consumer.ssrc]

    def consumer(self, ssrc: int) -> Consumer | None:
        """The consumer we send with ``ssrc`` (a receiver's NACK, PLI, FIR or report block)."""
        return self._consumers_by_ssrc.get(ssrc)

    def dump(self) -> dict[str, Any]:
        return {
            "ssrcTable": {str(ssrc): b[0].id for ssrc, b in self.ssrc_table.items()},
            "midTable": {mid: p.id for mid, p in self.mid_table.items()},
            "ridTable": {rid: p.id for rid, p in self.rid_table.items()},
        }


def _with(ids: tuple[int, ...], ext_id: int | None) -> tuple[int, ...]:
    return ids if ext_id is None or ext_id in ids else (*ids, ext_id)


def _first_text(extensions: dict[int, bytes], ids: tuple[int, ...]) -> str | None:
    for ext_id in ids:
        value = extensions.get(ext_id)
        if value is not None:
            return value.decode("ascii", "replace")
    return None
