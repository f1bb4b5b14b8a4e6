"""Recording media: RTP payloads back into frames, and frames into WebM files.

Knows nothing of conferences: `roomler.conference.recording` feeds it from the SFU.
"""
