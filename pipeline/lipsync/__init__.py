"""Lip-sync: the speaker's video, its mouth driven by the translated speech."""
