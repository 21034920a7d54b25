// The message box: what the person sends (text, a reply, a file, a slash command, a voice
// message recorded here) and the header's "Train on the sample" button and language choice.

import { post, showError } from "./api.js";
import { hideSuggestions } from "./commands.js";
import { $, isDm, note, state } from "./state.js";
import { formatSize } from "./text.js";

export function startReply(m) {
  state.replyTo = m.id;
  $("replying-name").textContent = m.author.name;
  $("replying-text").textContent = (m.content || "").slice(0, 80);
  $("replying").hidden = false;
  $("input").focus();
}
export function cancelReply() { state.replyTo = null; $("replying").hidden = true; }

export async function send() {
  const input = $("input");
  const text = input.value;
  if (!text.trim() && !state.file) return;
  note("sent", null);
  const form = new FormData();
  form.append("user", state.user);
  form.append("channel", state.channel);
  if (state.file) form.append("file", state.file, state.file.name);
  const isSlash = text.trimStart().startsWith("/");
  if (isSlash) form.append("text", text.trim());
  else {
    form.append("content", text);
    if (state.replyTo) form.append("reply_to", state.replyTo);
  }
  input.value = "";
  autosize();
  hideSuggestions();
  state.stuck = true;
  try {
    await post(isSlash ? "/api/slash" : "/api/send", form);
    showError("");
    cancelReply();
    clearFile();
  } catch (e) {
    showError(e.message);
    if (isSlash) input.value = text;
  }
}

// The header's "Train on the sample" button: the command a person would type, sent as them.
export async function trainOnSample() {
  note("sent", null);
  state.stuck = true;
  const form = new FormData();
  form.append("user", state.user);
  form.append("channel", state.channel);
  form.append("content", "!train sample");
  try { await post("/api/send", form); showError(""); } catch (e) { showError(e.message); }
}

// The header's language choice: `!language CODE`, the server's setting, typed as the person (an admin
// may set it; a member is told no) in this channel, or in the first server channel when a DM is open.
export async function chooseLanguage() {
  const code = $("language").value;
  if (!code) return;
  note("sent", null);
  state.stuck = true;
  const form = new FormData();
  form.append("user", state.user);
  form.append("channel", isDm(state.channel) ? state.world.channels.find((c) => c.kind === "text").id : state.channel);
  form.append("content", `!language ${code}`);
  try { await post("/api/send", form); showError(""); } catch (e) { showError(e.message); }
}

export function chooseFile() {
  state.file = $("file").files[0] || null;
  $("attached-name").textContent = state.file ? `${state.file.name} (${formatSize(state.file.size)})` : "";
  $("attached").hidden = !state.file;
}
export function clearFile() { state.file = null; $("file").value = ""; $("attached").hidden = true; }

export function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 200) + "px";
}

// -- voice messages -------------------------------------------------------------------------
export async function toggleRecording() {
  if (state.recorder) { state.recorder.stop(); return; }
  let stream;
  try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); }
  catch (e) { return showError(`No microphone: ${e.message}`); }
  const type = MediaRecorder.isTypeSupported("audio/ogg;codecs=opus") ? "audio/ogg;codecs=opus" : "audio/webm;codecs=opus";
  const recorder = new MediaRecorder(stream, { mimeType: type });
  const chunks = [];
  const started = performance.now();
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach((t) => t.stop());
    state.recorder = null;
    showRecording(null);
    const seconds = (performance.now() - started) / 1000;
    const form = new FormData();
    form.append("user", state.user);
    form.append("channel", state.channel);
    form.append("voice_message", "1");
    form.append("duration", seconds.toFixed(2));
    form.append("file", new Blob(chunks, { type }), type.includes("ogg") ? "voice-message.ogg" : "voice-message.webm");
    try { await post("/api/send", form); showError(""); } catch (e) { showError(e.message); }
  };
  recorder.start();
  state.recorder = recorder;
  showRecording(started);
}

// While recording: the button says Stop, and a timer beside it runs (m:ss, like Discord's).
function showRecording(started) {
  const button = $("record"), time = $("rec-time");
  clearInterval(state.recTimer);
  button.classList.toggle("recording", started !== null);
  button.textContent = started !== null ? "Stop" : "Rec";
  button.title = started !== null ? "Stop and send the voice message" : "Record a voice message";
  time.hidden = started === null;
  if (started === null) return;
  const tick = () => {
    const s = Math.floor((performance.now() - started) / 1000);
    time.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };
  tick();
  state.recTimer = setInterval(tick, 250);
}
