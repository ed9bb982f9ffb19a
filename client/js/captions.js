// Caption store: one entry per utterance and language (a repeated final replaces its entry).
// Pure (no DOM), so it is unit-tested with node's test runner.

export class CaptionStore {
  constructor(limit = 500) {
    this.limit = limit;
    this.byKey = new Map(); // insertion order = order of first arrival
  }

  static key(event) {
    return `${event.utterance_id}|${event.target_language}`;
  }

  // Apply a caption.final event; returns the entry, or null for other events.
  apply(event) {
    if (event.type !== "caption.final") return null;
    const key = CaptionStore.key(event);
    const known = this.byKey.get(key);
    const entry = {
      key,
      utteranceId: event.utterance_id,
      speaker: event.speaker,
      sequence: event.sequence,
      sourceLanguage: event.source_language,
      sourceText: event.source_text,
      targetLanguage: event.target_language,
      text: event.target_text,
      final: true,
      speechStart: event.speech_start_s,
      speechEnd: event.speech_end_s,
      speechEndAt: event.speech_end_at || 0,
      emittedAt: event.emitted_at || 0,
    };
    this.byKey.set(key, known ? { ...known, ...entry } : entry);
    this.trim();
    return this.byKey.get(key);
  }

  trim() {
    while (this.byKey.size > this.limit) {
      const oldest = this.byKey.keys().next().value;
      this.byKey.delete(oldest);
    }
  }

  entries() {
    return [...this.byKey.values()];
  }

  finals() {
    return this.entries().filter((entry) => entry.final);
  }
}
