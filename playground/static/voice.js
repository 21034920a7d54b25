// The voice channel: who is in it, joining and leaving, and the bot's voice, which arrives as
// binary frames of 20 ms 48 kHz stereo s16le PCM on the WebSocket, played with WebAudio.

import { post, setStatus, showError } from "./api.js";
import { $, hook, state, userName } from "./state.js";
import { el, escapeHtml } from "./text.js";

const SAMPLE_RATE = 48000;

export function updateVoice(data) {
  state.voiceMembers = data.members;
  state.online = data.online;
  setStatus(state.online, state.online ? `${state.world ? state.world.bot.name : "bot"} is online` : "bot offline");
  const ul = $("voice-members");
  ul.replaceChildren(...data.members.map((id) => {
    const li = el("li", "", escapeHtml(userName(id)));
    li.dataset.id = id;
    if (state.world && id === state.world.bot.id) li.classList.toggle("speaking", speaking());
    return li;
  }));
  const inVoice = data.members.includes(state.user);
  $("voice-button").textContent = inVoice ? "Leave voice" : "Join voice";
  $("voice-button").dataset.joined = inVoice ? "1" : "0";
}

function audioContext() {
  if (!state.audio) {
    state.audio = new AudioContext({ sampleRate: SAMPLE_RATE });
    state.playHead = 0;
  }
  if (state.audio.state === "suspended") {
    // After a reload while in voice there was no click yet: browsers keep audio off until one.
    state.audio.resume();
    if (!state.soundHint) { state.soundHint = true; showError("Click anywhere in the page to hear the bot."); }
  }
  return state.audio;
}

export async function toggleVoice() {
  const join = $("voice-button").dataset.joined !== "1";
  if (join) audioContext();  // created in the click, so the browser lets it play
  try { await post("/api/voice", { user: state.user, join }); showError(""); }
  catch (e) { showError(e.message); }
}

export function play(buffer) {
  hook.framesReceived += 1;
  const ctx = audioContext();
  const pcm = new Int16Array(buffer);
  const frames = pcm.length / 2;
  const audio = ctx.createBuffer(2, frames, SAMPLE_RATE);
  const left = audio.getChannelData(0), right = audio.getChannelData(1);
  let peak = hook.peak;
  for (let i = 0; i < frames; i++) {
    left[i] = pcm[2 * i] / 32768;
    right[i] = pcm[2 * i + 1] / 32768;
    const level = Math.abs(left[i]);
    if (level > peak) peak = level;
  }
  hook.peak = peak;
  if (hook.firstSampleAt === null) hook.firstSampleAt = performance.now();
  hook.samplesPlayed += frames;
  const source = ctx.createBufferSource();
  source.buffer = audio;
  source.connect(ctx.destination);
  const start = Math.max(state.playHead, ctx.currentTime + 0.06);  // a little jitter buffer
  source.start(start);
  state.playHead = start + audio.duration;
  state.speakingUntil = performance.now() + (state.playHead - ctx.currentTime) * 1000;
  showSpeaking();
}

function speaking() { return performance.now() < state.speakingUntil; }

function showSpeaking() {
  $("speaking").hidden = false;
  hook.speakingShown = true;
  const bot = state.world && document.querySelector(`#voice-members li[data-id="${state.world.bot.id}"]`);
  if (bot) bot.classList.add("speaking");
  clearTimeout(state.speakingTimer);
  state.speakingTimer = setTimeout(() => {
    $("speaking").hidden = true;
    if (bot) bot.classList.remove("speaking");
  }, Math.max(0, state.speakingUntil - performance.now()) + 100);
}
