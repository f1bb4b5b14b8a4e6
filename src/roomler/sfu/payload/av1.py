"""AV1 over RTP (AOM "RTP Payload Format For AV1" v1.0): keyframes and layer ids.

The payload starts with the aggregation header Z|Y|W(2)|N|-|-|- (section
4.4): Z, the first OBU element continues one from the previous packet; Y, the
last one continues in the next; W, the element count (0: each element has a
LEB128 length); N, the first packet of a coded video sequence -- set on
keyframes, which is how the SFU finds them.

Layer ids come from the Dependency Descriptor RTP header extension (the
spec's Appendix A), which Chrome sends with AV1 and which any SVC consumer of
AV1 needs: its mandatory part names a frame template, and the template
structure (attached to keyframes) gives each template its spatial and
temporal id.  :class:`DependencyDescriptorReader` keeps the last structure and
resolves each packet's template.  Without the extension, an OBU extension
header in the first OBU also carries temporal_id / spatial_id (AV1 spec
section 5.3.3): :func:`av1_obu_layers`.
"""

from __future__ import annotations

from typing import Final, NamedTuple

__all__ = [
    "DEPENDENCY_DESCRIPTOR_URI",
    "Av1AggregationHeader",
    "DependencyDescriptor",
    "DependencyDescriptorReader",
    "av1_keyframe",
    "av1_obu_layers",
    "parse_av1_aggregation_header",
]

DEPENDENCY_DESCRIPTOR_URI: Final = (
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
)


class Av1AggregationHeader(NamedTuple):
    continues_previous: bool  # Z
    continues_next: bool  # Y
    element_count: int  # W (0: every element is length-prefixed)
    new_sequence: bool  # N


def parse_av1_aggregation_header(payload: bytes | bytearray) -> Av1AggregationHeader:
    if not payload:
        raise ValueError("AV1 payload is empty")
    first = payload[0]
    return Av1AggregationHeader(
        bool(first & 0x80), bool(first & 0x40), (first >> 4) & 0x03, bool(first & 0x08)
    )


def av1_keyframe(payload: bytes | bytearray) -> bool:
    """True on the first packet of a coded video sequence (N=1, Z=0)."""
    if not payload:
        return False
    return payload[0] & 0x88 == 0x08


def _leb128(payload: bytes | bytearray, pos: int) -> tuple[int, int]:
    value = 0
    for index in range(8):  # AV1 spec section 4.10.5: at most 8 bytes
        if pos >= len(payload):
            raise ValueError("AV1 LEB128 length truncated")
        byte = payload[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, pos
    raise ValueError("AV1 LEB128 length longer than 8 bytes")


def av1_obu_layers(payload: bytes | bytearray) -> tuple[int, int] | None:
    """(spatial_id, temporal_id) of the first OBU's extension header, if it has one."""
    header = parse_av1_aggregation_header(payload)
    if header.continues_previous:
        return None  # the first element is the tail of an OBU: no OBU header here
    pos = 1
    if header.element_count != 1:
        _, pos = _leb128(payload, pos)  # the first element's length
    if pos >= len(payload):
        raise ValueError("AV1 packet has no OBU header")
    obu_header = payload[pos]
    if not obu_header & 0x04:  # obu_extension_flag
        return None
    if pos + 1 >= len(payload):
        raise ValueError("AV1 OBU extension header truncated")
    extension = payload[pos + 1]
    return (extension >> 3) & 0x03, extension >> 5


class DependencyDescriptor(NamedTuple):
    start_of_frame: bool
    end_of_frame: bool
    template_id: int
    frame_number: int
    spatial_id: int
    temporal_id: int
    structure_attached: bool


class _Bits:
    """MSB-first bit reader (the spec's f(n))."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes | bytearray) -> None:
        self._data = data
        self._pos = 0

    def read(self, count: int) -> int:
        value = 0
        for _ in range(count):
            byte = self._pos >> 3
            if byte >= len(self._data):
                raise ValueError("AV1 dependency descriptor truncated")
            value = (value << 1) | ((self._data[byte] >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value


class DependencyDescriptorReader:
    """Resolves the layer ids of one stream's dependency descriptors (Appendix A.8).

    Stateful because the template structure arrives only with keyframes; a
    packet naming a template before any structure was seen raises ValueError.
    """

    __slots__ = ("_layers", "_offset")

    def __init__(self) -> None:
        self._offset = 0
        self._layers: list[tuple[int, int]] = []  # (spatial, temporal) per template

    @property
    def max_spatial_id(self) -> int:
        return max((s for s, _ in self._layers), default=0)

    @property
    def max_temporal_id(self) -> int:
        return max((t for _, t in self._layers), default=0)

    def read(self, value: bytes | bytearray) -> DependencyDescriptor:
        if len(value) < 3:
            raise ValueError(f"AV1 dependency descriptor of {len(value)} bytes (needs 3)")
        bits = _Bits(value)
        start, end = bool(bits.read(1)), bool(bits.read(1))
        template_id, frame_number = bits.read(6), bits.read(16)
        attached = False
        if len(value) > 3:
            attached = bool(bits.read(1))
            bits.read(4)  # active decode targets, custom dtis / fdiffs / chains flags
            if attached:
                self._read_structure(bits)
        if not self._layers:
            raise ValueError("AV1 dependency descriptor before any template structure")
        index = (template_id - self._offset) % 64
        if index >= len(self._layers):
            raise ValueError(f"AV1 dependency descriptor names unknown template {template_id}")
        spatial, temporal = self._layers[index]
        return DependencyDescriptor(
            start, end, template_id, frame_number, spatial, temporal, attached
        )

    def _read_structure(self, bits: _Bits) -> None:
        """template_dependency_structure() up to template_layers(); the rest is not needed."""
        offset = bits.read(6)
        bits.read(5)  # dt_cnt_minus_one
        layers: list[tuple[int, int]] = []
        spatial = temporal = 0
        while True:
            layers.append((spatial, temporal))
            if len(layers) > 64:
                raise ValueError("AV1 template structure has more than 64 templates")
            next_layer = bits.read(2)
            if next_layer == 1:
                temporal += 1
            elif next_layer == 2:
                spatial, temporal = spatial + 1, 0
            elif next_layer == 3:
                break
        self._offset, self._layers = offset, layers
