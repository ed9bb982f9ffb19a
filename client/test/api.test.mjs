import { test } from "node:test";
import assert from "node:assert/strict";
import { gatewayFor, rtcIceServers } from "../js/api.js";

test("ICE servers drop null credentials and keep TURN ones", () => {
  const servers = rtcIceServers([
    { urls: ["stun:127.0.0.1:3478"], username: null, credential: null },
    { urls: ["turn:127.0.0.1:3478"], username: "1700003600:ab", credential: "c2VjcmV0" },
  ]);
  assert.deepEqual(servers, [
    { urls: ["stun:127.0.0.1:3478"] },
    { urls: ["turn:127.0.0.1:3478"], username: "1700003600:ab", credential: "c2VjcmV0" },
  ]);
  assert.deepEqual(rtcIceServers(), []);
});

test("a room held by another gateway is joined there, with the same choices", () => {
  const query = { room: "standup", name: "Ana", lang: "pt" };
  assert.equal(gatewayFor({ gateway_url: null }, "http://a:8000/?room=standup", query), null);
  assert.equal(gatewayFor({ gateway_url: "http://a:8000" }, "http://a:8000/x", query), null);
  assert.equal(
    gatewayFor({ gateway_url: "http://b:8000" }, "http://a:8000/?room=standup", query),
    "http://b:8000/?room=standup&name=Ana&lang=pt",
  );
});

test("calls carry the invitation's token, and JSON bodies their type", async () => {
  const { headersFor } = await import("../js/api.js");
  assert.deepEqual(headersFor(undefined, null), {});
  assert.deepEqual(headersFor({ a: 1 }, "t0k"), {
    "content-type": "application/json", authorization: "Bearer t0k",
  });
});
