// Caption store: one entry per utterance and language. A final replaces its entry in place: the
// utterance's live (partial) entry, or an earlier final of it. Partials are best effort: a lower
// revision than the entry's, or any partial once the final is in, is ignored.
// Pure (no DOM), so it is unit-tested with node's test runner.

// Two runs of words as one (the server sends words joined by single spaces).
export function joinWords(first, second) {
  if (!first || !second) return first || second || "";
  return /\s$/.test(first) || /^\s/.test(second) ? first + second : `${first} ${second}`;
}

// What a live line shows: in the speaker's own language (the speaker included) the transcript so
// far, its unstable tail apart; in another language the committed words translated.
export function partialText(event) {
  const spoken = joinWords(event.committed_text, event.unstable_text);
  if (event.source_language === event.target_language) {
    return { text: event.committed_text, unstable: event.unstable_text, sourceText: spoken };
  }
  return { text: event.target_text, unstable: "", sourceText: spoken };
}

export class CaptionStore {
  constructor(limit = 500) {
    this.limit = limit;
    this.byKey = new Map(); // insertion order = order of first arrival
  }

  static key(event) {
    return `${event.utterance_id}|${event.target_language}`;
  }

  // Apply a caption event; returns the entry to show, or null (other events, ignored partials).
  apply(event) {
    if (event.type === "caption.final") return this.applyFinal(event);
    if (event.type === "caption.partial") return this.applyPartial(event);
    return null;
  }

  applyFinal(event) {
    const key = CaptionStore.key(event);
    return this.put({
      key,
      utteranceId: event.utterance_id,
      speaker: event.speaker,
      sequence: event.sequence,
      sourceLanguage: event.source_language,
      sourceText: event.source_text,
      targetLanguage: event.target_language,
      text: event.target_text,
      unstable: "",
      final: true,
      speechStart: event.speech_start_s,
      speechEnd: event.speech_end_s,
      speechEndAt: event.speech_end_at || 0,
      emittedAt: event.emitted_at || 0,
    });
  }

  applyPartial(event) {
    const key = CaptionStore.key(event);
    const known = this.byKey.get(key);
    if (known && (known.final || known.abandoned || event.revision < known.revision)) return null;
    return this.put({
      key,
      utteranceId: event.utterance_id,
      speaker: event.speaker,
      sourceLanguage: event.source_language,
      targetLanguage: event.target_language,
      revision: event.revision,
      final: false,
      emittedAt: event.emitted_at || 0,
      ...partialText(event),
    });
  }

  // The utterance will have no final (in `language`, or in any): its live entries are abandoned
  // (later partials of them are ignored). Returns the keys of the entries abandoned.
  abandon(utteranceId, language = null) {
    const live = this.entries().filter((entry) => entry.utteranceId === utteranceId && !entry.final
      && (language === null || entry.targetLanguage === language));
    for (const entry of live) this.byKey.set(entry.key, { ...entry, abandoned: true });
    return live.map((entry) => entry.key);
  }

  put(entry) {
    this.byKey.set(entry.key, entry); // an existing key keeps its place
    this.trim();
    return this.byKey.get(entry.key) || null;
  }

  trim() {
    while (this.byKey.size > this.limit) {
      const oldest = this.byKey.keys().next().value;
      this.byKey.delete(oldest);
    }
  }

  entries() {
    return [...this.byKey.values()].filter((entry) => !entry.abandoned);
  }

  finals() {
    return this.entries().filter((entry) => entry.final);
  }
}
