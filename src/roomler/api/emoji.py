"""What counts as one unicode emoji for a reaction.

A reaction is a single emoji as people pick it: one pictograph, optionally with a
variation selector (U+FE0F), a skin tone (U+1F3FB..U+1F3FF), joined to others by
zero-width joiners (U+200D: 👩‍💻), a flag (two regional indicators: 🇫🇷, or a tag
sequence: 🏴 + tags + U+E007F), or a keycap (digit, # or * + U+FE0F + U+20E3). Plain text,
two emoji side by side, or a lone modifier is refused. The ranges are Unicode's emoji
blocks (UTS #51); we check the shape, not that the sequence is one Unicode has named.
"""

from __future__ import annotations

MAX_EMOJI_CHARS = 32

ZWJ = 0x200D
VARIATION_SELECTORS = (0xFE0E, 0xFE0F)
KEYCAP = 0x20E3
SKIN_TONES = range(0x1F3FB, 0x1F400)
REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)
TAGS = range(0xE0020, 0xE0080)
KEYCAP_BASES = frozenset(map(ord, "0123456789#*"))

# Code points that are emoji on their own (with or without U+FE0F).
PICTOGRAPH_RANGES = (
    range(0x1F000, 0x1FB00),  # mahjong .. symbols and pictographs extended-A
    range(0x2600, 0x27C0),  # miscellaneous symbols, dingbats
    range(0x2300, 0x2400),  # miscellaneous technical (⌚ ⏰ ⏩)
    range(0x2B00, 0x2C00),  # arrows and shapes (⬆ ⭐ ⭕)
    range(0x2190, 0x2200),  # arrows (↔ ↩)
    range(0x2900, 0x2980),  # supplemental arrows (⤴ ⤵)
    range(0x25A0, 0x2600),  # geometric shapes (▶ ◀ ◻)
)
PICTOGRAPH_SINGLES = frozenset(
    [0x00A9, 0x00AE, 0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299]
)


def _pictograph(cp: int) -> bool:
    return cp in PICTOGRAPH_SINGLES or any(cp in r for r in PICTOGRAPH_RANGES)


def is_single_emoji(text: str) -> bool:
    """Whether `text` is exactly one emoji (see the module's docstring)."""
    points = [ord(c) for c in text]
    if not points or len(points) > MAX_EMOJI_CHARS:
        return False
    if points[0] in KEYCAP_BASES:
        return points[1:] in ([KEYCAP], [0xFE0F, KEYCAP])
    if all(p in REGIONAL_INDICATORS for p in points):
        return len(points) == 2
    bases = 0
    joined = True  # the first code point must be a base
    for index, cp in enumerate(points):
        if cp == ZWJ:
            if joined:  # two joiners in a row, or one at the start
                return False
            joined = True
        elif cp in VARIATION_SELECTORS or cp in SKIN_TONES:
            if joined:
                return False
        elif cp in TAGS:
            if index == 0 or points[-1] != 0xE007F:
                return False
        elif _pictograph(cp) and cp not in REGIONAL_INDICATORS:
            if not joined:  # a second emoji beside the first
                return False
            bases += 1
            joined = False
        else:
            return False
    return bases >= 1 and not joined
