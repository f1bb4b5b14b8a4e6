"""Stored files: where their bytes live (`storage`) and the thumbnails of images (`thumbnails`).

Knows nothing of the API or of chat: uploads (api/files.py) and any other feature that
keeps bytes (call recordings) go through `FileStorage`.
"""
