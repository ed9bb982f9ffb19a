"""Dragoman's speech translation pipeline: VAD → ASR → MT → TTS, and the bus between them."""
