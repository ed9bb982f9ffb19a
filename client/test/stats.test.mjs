import { test } from "node:test";
import assert from "node:assert/strict";
import { LatencyStats, quantile } from "../js/stats.js";

test("quantile picks from the sorted values", () => {
  assert.equal(quantile([], 0.5), null);
  assert.equal(quantile([3, 1, 2], 0.5), 2);
  assert.equal(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95), 10);
});

test("caption latency is server processing plus plausible transit", () => {
  const stats = new LatencyStats();
  const event = { speech_end_at: 100, emitted_at: 100.8 };
  assert.ok(Math.abs(stats.onCaption(event, 100900) - 0.9) < 1e-9);
  // A browser clock far off the server's: only the server's part counts.
  assert.ok(Math.abs(stats.onCaption(event, 500000) - 0.8) < 1e-9);
});

test("audio latency adds the wait from caption to sound, once per caption", () => {
  const stats = new LatencyStats();
  stats.onCaption({ speech_end_at: 10, emitted_at: 11 }, 11000);
  assert.equal(stats.onAudio(11500), 1.5);
  assert.equal(stats.onAudio(12000), null);
  const summary = stats.summary();
  assert.deepEqual([summary.captionP50, summary.audioP50, summary.samples], [1, 1.5, 1]);
});
