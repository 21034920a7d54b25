// The playground page: a small Discord client for the local server (plain JS modules, no build
// step; this one is the entry, loaded by index.html as a module). State comes over one WebSocket
// (/ws); actions are HTTP posts (/api/..., api.js). The bot's voice arrives as binary frames of
// 20 ms 48 kHz stereo s16le PCM, played with WebAudio (voice.js).
// The server decides what this page may see (another person's ephemeral messages and DMs never
// come here) and takes actions only with the sign-in cookie and the X-Playground header: web.py.
// Besides the server's text channels, the page shows the DM channel between the person it acts
// as and the bot ("Direct messages"): the bot's private answers (!getfile typed in a channel) go there.
// The modules: state.js (what the page knows), text.js (escaping, markdown), api.js,
// messages.js (the channels and messages drawn), composer.js (the message box, files, voice
// messages), commands.js (slash suggestions, autocomplete, Apps menus, modals), voice.js.

import { setStatus, showError } from "./api.js";
import {
  autocompleteContext, closeMenu, complete, currentSuggestions, hideSuggestions, pickChoice, renderChoices,
  updateChoices, updateSuggestions,
} from "./commands.js";
import {
  autosize, cancelReply, chooseFile, chooseLanguage, clearFile, send, toggleRecording, trainOnSample,
} from "./composer.js";
import { addNotice, remove, renderAll, scrolled, setupWorld, showTyping, upsert } from "./messages.js";
import { $, hook, isDm, myDm, state } from "./state.js";
import { play, toggleVoice, updateVoice } from "./voice.js";

// -- connection -----------------------------------------------------------------------------
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws?user=${state.user || ""}`);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") return play(event.data);
    receive(JSON.parse(event.data));
  };
  ws.onclose = async () => {
    hook.connected = false;
    setStatus(false, "disconnected: retrying…");
    // Still signed in? A restarted playground has a new token: its new link must be opened.
    const session = await fetch("/api/session").catch(() => null);
    if (session && session.status === 401) {
      setStatus(false, "signed out");
      showError("The playground restarted (or this browser is not signed in): open the link it printed, with ?token=…");
      hook.signedOut = true;
    }
    setTimeout(connect, session && session.status === 401 ? 5000 : 1000);
  };
}

function receive(data) {
  switch (data.type) {
    case "hello":
      state.world = data.world;
      state.messages = new Map(data.messages.map((m) => [m.id, m]));
      state.unread.clear();
      setupWorld();
      renderAll();
      hook.connected = true;
      if (hook.signedOut) { hook.signedOut = false; showError(""); }
      break;
    case "as":  // switched person: the server sends what that person may see
      if (data.user !== state.user) break;  // switched again meanwhile: the next "as" follows
      state.messages = new Map(data.messages.map((m) => [m.id, m]));
      state.unread.clear();
      renderAll();
      hook.as = data.user;
      break;
    case "message": upsert(data.message); break;
    case "delete": remove(data.id); break;
    case "typing": showTyping(data.channel_id, data.user); break;
    case "commands":
      state.commands = data.commands; state.menus = data.menus;
      state.dmCommands = data.dm_commands || []; state.dmMenus = data.dm_menus || [];
      break;
    case "voice": updateVoice(data); break;
    case "notice":
      if (data.for_user === state.user && data.channel_id === state.channel) addNotice(data.text);
      break;
  }
}

// -- wiring ---------------------------------------------------------------------------------
function init() {
  const input = $("input");
  input.addEventListener("keydown", (event) => {
    if (!$("suggestions").hidden && state.choices.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        const n = state.choices.length;
        state.suggestion = (state.suggestion + (event.key === "ArrowDown" ? 1 : n - 1)) % n;
        renderChoices();
        event.preventDefault();
        return;
      }
      if (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey)) {
        pickChoice(state.choices[state.suggestion]);
        event.preventDefault();
        return;
      }
    }
    const list = $("suggestions").hidden ? [] : currentSuggestions();
    if (list.length && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      state.suggestion = (state.suggestion + (event.key === "ArrowDown" ? 1 : list.length - 1)) % list.length;
      updateSuggestions();
      event.preventDefault();
    } else if (list.length && event.key === "Tab") {
      complete(list[state.suggestion]);
      event.preventDefault();
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (list.length && list[state.suggestion].name !== input.value.slice(1)) complete(list[state.suggestion]);
      else send();
    } else if (event.key === "Escape") {
      hideSuggestions();
      cancelReply();
    }
  });
  let choicesTimer = null;
  input.addEventListener("input", () => {
    autosize();
    updateSuggestions();
    clearTimeout(choicesTimer);
    if (autocompleteContext()) choicesTimer = setTimeout(updateChoices, 150);
    else if (state.choices.length) hideSuggestions();
  });
  $("file").addEventListener("change", chooseFile);
  $("cancel-file").onclick = clearFile;
  $("cancel-reply").onclick = cancelReply;
  $("voice-button").onclick = toggleVoice;
  $("record").onclick = toggleRecording;
  $("train-sample").onclick = trainOnSample;
  $("language").onchange = chooseLanguage;
  $("person").addEventListener("change", () => {
    const inDm = isDm(state.channel);
    state.user = $("person").value;
    state.unread.clear();
    if (inDm) state.channel = myDm();  // the DM view now shows this person's DM with the bot
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ type: "as", user: state.user }));
    renderAll();
  });
  document.addEventListener("contextmenu", closeMenu);  // a message's own stops here (openMenu)
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") closeMenu(); });
  $("messages").addEventListener("scroll", scrolled);
  document.addEventListener("click", () => {
    closeMenu();
    if (state.audio && state.audio.state === "suspended") state.audio.resume().then(() => showError(""));
  });
  connect();
}

init();
