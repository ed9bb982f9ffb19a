// One participant's WebRTC session: media up, translated media down, events over a DataChannel.
// Reconnects with the same identity after a dropped connection.
import { api } from "./api.js";

const RECONNECT_AFTER_MS = 3000;

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 5000); // offer what was gathered so far
  });
}

export class Call {
  constructor({ room, name, language, stream, iceServers = [], onEvent, onState, onTracks }) {
    Object.assign(this, { room, name, language, stream, iceServers, onEvent, onState, onTracks });
    this.id = null;
    this.secret = null;
    this.pc = null;
    this.closed = false;
    this.dropTimer = null;
  }

  get micTrack() {
    return this.stream?.getAudioTracks()[0] || null;
  }

  get camTrack() {
    return this.stream?.getVideoTracks()[0] || null;
  }

  newPeer() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const events = pc.createDataChannel("events");
    events.onmessage = (message) => this.receive(JSON.parse(message.data));
    // m-lines, in order: my language's audio, the speaker's original voice, the speaker's video.
    pc.addTransceiver(this.micTrack || "audio", { direction: this.micTrack ? "sendrecv" : "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver(this.camTrack || "video", { direction: this.camTrack ? "sendrecv" : "recvonly" });
    pc.onconnectionstatechange = () => this.onConnectionState(pc);
    pc.ontrack = () => this.reportTracks(pc);
    return pc;
  }

  // The gateway ended this session for good (replaced, removed, token expired): never reconnect.
  receive(event) {
    if (event.type === "session.ended") this.end();
    this.onEvent(event);
  }

  end() {
    this.closed = true;
    clearTimeout(this.dropTimer);
    this.pc?.close();
    this.stream?.getTracks().forEach((track) => track.stop());
  }

  reportTracks(pc) {
    const [translated, original, video] = pc.getTransceivers().map((t) => t.receiver.track);
    this.onTracks({ translated, original, video });
  }

  async negotiate(pc, body) {
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete(pc);
    const answer = await body(pc.localDescription.sdp);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return answer;
  }

  async join() {
    const pc = this.newPeer();
    const reconnecting = this.id !== null;
    const answer = await this.negotiate(pc, (sdp) => api.join(this.room, {
      name: this.name, language: this.language, sdp, type: "offer",
      ...(reconnecting ? { participant_id: this.id, secret: this.secret } : {}),
    }));
    this.pc?.close();
    this.pc = pc;
    this.id = answer.participant_id;
    this.secret = answer.secret;
    this.reportTracks(pc);
    return answer;
  }

  onConnectionState(pc) {
    if (pc !== this.pc || this.closed) return;
    this.onState(pc.connectionState);
    clearTimeout(this.dropTimer);
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
      this.dropTimer = setTimeout(() => this.reconnect(), pc.connectionState === "failed" ? 0 : RECONNECT_AFTER_MS);
    }
  }

  async reconnect() {
    if (this.closed) return;
    this.onState("reconnecting");
    try {
      await this.join();
    } catch (error) {
      if (error.status === 401 || error.status === 403) return this.onEvent({ type: "session.ended", reason: "refused", detail: error.message });
      if (error.status === 404) this.id = null; // the seat is gone: join afresh
      this.dropTimer = setTimeout(() => this.reconnect(), RECONNECT_AFTER_MS);
    }
    return undefined;
  }

  // Lip-synced video in my language, or the speaker's original video (audio stays translated).
  async setLipsync(enabled) {
    await api.lipsync(this.room, this.id, this.secret, enabled);
  }

  async setMuted(muted) {
    await api.mute(this.room, this.id, this.secret, muted);
    if (this.micTrack) this.micTrack.enabled = !muted;
  }

  // A moderator's mute: the microphone is off until a moderator lifts it.
  mutedByModerator() {
    if (this.micTrack) this.micTrack.enabled = false;
  }

  // Stop or restart the camera; a camera that was not there at join is added by renegotiation.
  async setCamera(on, deviceId) {
    const sender = this.pc.getTransceivers()[2].sender;
    if (!on) {
      this.camTrack?.stop();
      if (this.camTrack) this.stream.removeTrack(this.camTrack);
      await sender.replaceTrack(null);
      return null;
    }
    const media = await navigator.mediaDevices.getUserMedia({ video: deviceId ? { deviceId: { exact: deviceId } } : true });
    const track = media.getVideoTracks()[0];
    this.stream.addTrack(track);
    const transceiver = this.pc.getTransceivers()[2];
    if (transceiver.direction === "recvonly") {
      transceiver.direction = "sendrecv";
      await transceiver.sender.replaceTrack(track);
      await this.negotiate(this.pc, (sdp) => api.renegotiate(this.room, this.id, { sdp, secret: this.secret, type: "offer" }));
    } else {
      await sender.replaceTrack(track);
    }
    return track;
  }

  floor(action) {
    return api.floor(this.room, this.id, this.secret, action);
  }

  async leave() {
    this.closed = true;
    clearTimeout(this.dropTimer);
    try {
      if (this.id) await api.leave(this.room, this.id, this.secret);
    } finally {
      this.pc?.close();
      this.stream?.getTracks().forEach((track) => track.stop());
    }
  }
}
