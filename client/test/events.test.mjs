// The client handles exactly the events the server sends: the types in events.schema.json
// (generated from the Python models) are the cases of onRoomEvent, no more, no fewer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const here = new URL(".", import.meta.url);
const schema = JSON.parse(readFileSync(new URL("../events.schema.json", here), "utf8"));
const app = readFileSync(new URL("../js/app.js", here), "utf8");

test("onRoomEvent has a case for every event type and none for others", () => {
  const sent = Object.keys(schema.discriminator.mapping).sort();
  const body = app.slice(app.indexOf("function onRoomEvent"), app.indexOf("function nameOf"));
  const handled = [...body.matchAll(/case "([a-z.]+)":/g)].map((m) => m[1]).sort();
  assert.deepEqual(handled, sent);
});
