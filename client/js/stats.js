// Latency statistics from events: end of speech → caption, and → first translated audio.

export function quantile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.round(q * (sorted.length - 1)))];
}

export class LatencyStats {
  constructor(window = 50) {
    this.window = window;
    this.caption = [];
    this.audio = [];
    this.pendingAudio = null; // the latest caption still waiting for its speech
  }

  push(list, value) {
    list.push(value);
    if (list.length > this.window) list.shift();
  }

  // A final caption arrived at `receivedAt` (ms since epoch, this clock).
  onCaption(event, receivedAt) {
    if (!event.speech_end_at) return null;
    const server = Math.max(0, event.emitted_at - event.speech_end_at);
    const transit = (receivedAt / 1000) - event.emitted_at;
    // Clocks may differ between browser and server: trust transit only when plausible.
    const latency = server + (transit >= 0 && transit < 5 ? transit : 0);
    this.push(this.caption, latency);
    this.pendingAudio = { latency, receivedAt };
    return latency;
  }

  // The translated audio rose above silence at `heardAt` (ms since epoch).
  onAudio(heardAt) {
    if (!this.pendingAudio) return null;
    const { latency, receivedAt } = this.pendingAudio;
    this.pendingAudio = null;
    const value = latency + Math.max(0, (heardAt - receivedAt) / 1000);
    this.push(this.audio, value);
    return value;
  }

  summary() {
    return {
      captionP50: quantile(this.caption, 0.5),
      captionP95: quantile(this.caption, 0.95),
      audioP50: quantile(this.audio, 0.5),
      audioP95: quantile(this.audio, 0.95),
      samples: this.caption.length,
    };
  }
}
