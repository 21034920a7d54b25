// The playground page: a small Discord client for the local server (plain JS, no build step).
// State comes over one WebSocket (/ws); actions are HTTP posts (/api/...). The bot's voice
// arrives as binary frames of 20 ms 48 kHz stereo s16le PCM, played with WebAudio.
// The server decides what this page may see (another person's ephemeral messages and DMs never
// come here) and takes actions only with the sign-in cookie and the X-Playground header: web.py.
// Besides the server's text channels, the page shows the DM channel between the person it acts
// as and the bot ("Direct messages"): the bot's private answers (!getfile typed in a channel) go there.
"use strict";

const $ = (id) => document.getElementById(id);
const SAMPLE_RATE = 48000;

// Hooks for tests and the benchmark (read with page.evaluate).
window.playground = {
  connected: false, samplesPlayed: 0, peak: 0, firstSampleAt: null, framesReceived: 0,
  log: [],  // [{kind, id, t}] most recent last: "sent", "render"
};
const hook = window.playground;

const state = {
  world: null, messages: new Map(), channel: null, user: null, commands: [], menus: [], dmCommands: [], dmMenus: [],
  unread: new Map(),  // channel id -> messages that arrived there while another channel was open (DMs)
  replyTo: null, file: null, voiceMembers: [], online: false, typingTimer: null, choices: [],
  audio: null, playHead: 0, speakingUntil: 0, ws: null, suggestion: 0, recorder: null,
  stuck: true,  // the list follows its end (Discord's behaviour) until the person scrolls up
  scrolledTo: 0,  // the list's scrollTop when last seen
};

Object.defineProperty(hook, "stuck", { get: () => state.stuck });  // following the list's end?

function note(kind, id) {
  hook.log.push({ kind, id, t: performance.now() });
  if (hook.log.length > 2000) hook.log.splice(0, 1000);
}

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

function setStatus(online, text) {
  $("status").className = online ? "online" : "offline";
  $("status").textContent = text;
}

// -- the world ------------------------------------------------------------------------------
function setupWorld() {
  const w = state.world;
  $("guild-name").textContent = w.guild.name;
  document.title = `${w.guild.name} · playground`;
  const text = w.channels.filter((c) => c.kind === "text");
  const voice = w.channels.find((c) => c.kind === "voice");
  if (!state.user || !w.people.some((p) => p.id === state.user)) state.user = w.people[0].id;
  if (!state.channel || !(text.some((c) => c.id === state.channel) || state.channel === myDm())) {
    state.channel = text[0].id;
  }
  $("channels").replaceChildren(...text.map((c) => {
    const li = document.createElement("li");
    li.textContent = c.name;
    li.dataset.id = c.id;
    li.onclick = () => openChannel(c.id);
    return li;
  }));
  if (voice) $("voice-name").textContent = voice.name;
  $("person").replaceChildren(...w.people.map((p) => {
    const o = document.createElement("option");
    o.value = p.id;
    o.textContent = `${p.name} (${p.role})`;
    return o;
  }));
  $("person").value = state.user;
}

function userName(id) { return (state.world && state.world.users[id]) || "unknown"; }
function channelName(id) {
  if (isDm(id)) return state.world.bot.name;  // a DM is named after the other end: the bot
  const c = state.world && state.world.channels.find((x) => x.id === id);
  return c ? c.name : "?";
}
// The DM channels: each person's with the bot; this page shows its own person's only.
function isDm(id) { return !!state.world && state.world.people.some((p) => p.dm === id); }
function myDm() {
  const me = state.world && state.world.people.find((p) => p.id === state.user);
  return me ? me.dm : null;
}

function openChannel(id) {
  if (id !== state.channel) cancelReply();  // a reply stays in its own channel
  state.channel = id;
  state.unread.delete(id);
  renderAll();
}

// "Direct messages": one entry, the bot, for the person the page acts as; a count of the
// messages that arrived while another channel was open (cleared when it is opened).
function renderDms() {
  const dm = myDm();
  if (!dm) return;
  const bot = state.world.bot.name;
  const count = state.unread.get(dm) || 0;
  const li = el("li", "dm" + (dm === state.channel ? " active" : "") + (count ? " unread" : ""));
  li.dataset.id = dm;
  li.title = `Your direct messages with ${bot}`;
  const avatar = el("span", "dm-avatar", escapeHtml(bot.slice(0, 1).toUpperCase()));
  avatar.setAttribute("aria-hidden", "true");
  li.append(avatar, el("span", "name", escapeHtml(bot)));
  if (count) {
    const badge = el("span", "badge", count > 99 ? "99+" : String(count));
    badge.title = `${count} new message${count === 1 ? "" : "s"}`;
    li.append(badge);
  }
  li.onclick = () => openChannel(dm);
  $("dms").replaceChildren(li);
}

// -- messages -------------------------------------------------------------------------------
// for_user: the one person who may see a message (an ephemeral one, a DM), null for everyone.
function visible(m) {
  return m.channel_id === state.channel && !m.deleted && (m.for_user === null || m.for_user === state.user);
}

function renderAll() {
  for (const li of $("channels").children) li.classList.toggle("active", li.dataset.id === state.channel);
  renderDms();
  const sigil = isDm(state.channel) ? "@" : "#";
  $("channel-sigil").textContent = sigil;
  $("channel-name").textContent = channelName(state.channel);
  $("input").placeholder = `Message ${sigil}${channelName(state.channel)}`;
  const list = [...state.messages.values()].filter(visible).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
  sizes.disconnect();
  sizes.observe($("messages"));
  $("messages").replaceChildren(...list.map(renderMessage));
  state.stuck = true;
  scrollDown();
  updateVoice({ members: state.voiceMembers, online: state.online });
}

function upsert(m) {
  const known = state.messages.has(m.id);
  state.messages.set(m.id, m);
  if (m.author.bot && m.channel_id === state.channel) hideTyping();
  if (!known && !m.deleted && m.channel_id !== state.channel && m.channel_id === myDm()
      && String(m.author.id) !== String(state.user)) {
    state.unread.set(m.channel_id, (state.unread.get(m.channel_id) || 0) + 1);  // a DM while elsewhere
    renderDms();
  }
  if (!visible(m)) return;
  const el = renderMessage(m);
  const old = document.querySelector(`.msg[data-id="${m.id}"]`);
  if (old) { sizes.unobserve(old); old.replaceWith(el); }
  else {
    const list = $("messages");
    const later = [...list.children].find((x) => x.dataset.id && BigInt(x.dataset.id) > BigInt(m.id));
    list.insertBefore(el, later || null);
    if (String(m.author.id) === String(state.user)) state.stuck = true;  // what you send, you see
  }
  followEnd();
  note(known ? "edit" : "render", m.id);
}

function remove(id) {
  const m = state.messages.get(id);
  if (m) m.deleted = true;
  const el = document.querySelector(`.msg[data-id="${id}"]`);
  if (el) { sizes.unobserve(el); el.remove(); }
}

// Sticking to the end: when the person was at the bottom, anything that makes the list taller
// (a new message, an edit that grows one, an image or audio player that loads, the list itself
// getting shorter as the composer grows) keeps the end in view.  Scrolled up, nothing moves.
function scrollDown() { const l = $("messages"); l.scrollTop = l.scrollHeight; state.scrolledTo = l.scrollTop; }
// A scroll event arrives a frame late, maybe after the list grew again: only a move up is the
// person leaving the end (growth never moves scrollTop); reaching the end again sticks.
function scrolled() {
  const l = $("messages");
  if (atEnd()) state.stuck = true;
  else if (l.scrollTop < state.scrolledTo) state.stuck = false;
  state.scrolledTo = l.scrollTop;
}
function atEnd() { const l = $("messages"); return l.scrollHeight - l.scrollTop - l.clientHeight < 4; }
function followEnd() { if (state.stuck) scrollDown(); }
const sizes = new ResizeObserver(followEnd);  // every message, and the list's own box

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Enough of Discord's markdown to read the bot, on text escaped first (so nothing the text
// says becomes HTML): code blocks and inline code (kept verbatim), block quotes ("> " quotes a
// line, ">>> " the rest of the message), bold, italics, underline, strikethrough, mentions.
function markdown(text) {
  const kept = [];  // code, set aside so nothing inside it is formatted
  const keep = (html) => { kept.push(html); return `\u0000${kept.length - 1}\u0000`; };
  let s = escapeHtml(text.replace(/\u0000/g, "").replace(/\r\n?/g, "\n"))
    .replace(/```(?:([\w+-]+)\n)?\n?([\s\S]*?)\n?```\n?/g, (_, lang, code) =>  // a block ends its line
      keep(`<pre${lang ? ` data-lang="${lang}"` : ""}><code>${code}</code></pre>`))
    .replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, ticks, code) => keep(`<code>${code.trim() || code}</code>`));
  s = quotes(s)
    .replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>")
    .replace(/__([^_]+)__/g, "<u>$1</u>")
    .replace(/~~([^~]+)~~/g, "<s>$1</s>")
    .replace(/(^|[^*])\*([^*\n]+)\*/g, "$1<i>$2</i>")
    .replace(/(^|[^\w])_([^_\n]+)_(?!\w)/g, "$1<i>$2</i>")
    .replace(/&lt;@!?(\d+)&gt;/g, (_, id) => `<span class="mention">@${escapeHtml(userName(id))}</span>`)
    .replace(/&lt;#(\d+)&gt;/g, (_, id) => `<span class="mention">#${escapeHtml(channelName(id))}</span>`);
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => kept[Number(i)]);
}

// Block quotes on escaped text: consecutive lines starting "&gt; " make one <blockquote>;
// a line starting "&gt;&gt;&gt; " quotes everything after it.  A block element ends its own line,
// so the newline right after a quote is dropped (the content keeps white-space: pre-wrap).
function quotes(s) {
  const lines = s.split("\n");
  const out = [];
  let quoted = null;
  const close = () => { if (quoted) { out.push(`<blockquote>${quoted.join("\n")}</blockquote>`); quoted = null; } };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const rest = /^&gt;&gt;&gt; ([\s\S]*)$/.exec(line);
    if (rest) {
      close();
      out.push(`<blockquote>${[rest[1], ...lines.slice(i + 1)].join("\n")}</blockquote>`);
      return joinBlocks(out);
    }
    const one = /^&gt; (.*)$/.exec(line);
    if (one) (quoted = quoted || []).push(one[1]);
    else { close(); out.push(line); }
  }
  close();
  return joinBlocks(out);
}
function joinBlocks(parts) {
  return parts.reduce((acc, part, i) => acc + (i === 0 || parts[i - 1].startsWith("<blockquote>") ? "" : "\n") + part, "");
}

function el(tag, cls, html) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (html !== undefined) e.innerHTML = html;
  return e;
}

function renderMessage(m) {
  const li = el("li", "msg" + (m.author.bot ? " bot" : "") + (m.ephemeral ? " ephemeral" : ""));
  li.dataset.id = m.id;
  li.dataset.author = m.author.name;
  if (m.reference) {
    li.append(el("div", "quote", `<b>@${escapeHtml(m.reference.author)}</b> ${
      m.reference.deleted ? "<i>Original message was deleted</i>" : escapeHtml(m.reference.content)}`));
  }
  if (m.interaction) {
    li.append(el("div", "used", m.interaction.menu
      ? `${escapeHtml(m.interaction.user)} used <b>${escapeHtml(m.interaction.name)}</b>`
      : `${escapeHtml(m.interaction.user)} used <b>/${escapeHtml(m.interaction.name)}</b>`));
  }
  li.append(el("div", "avatar", escapeHtml(m.author.name.slice(0, 1).toUpperCase())));
  const time = new Date(m.timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  li.append(el("div", "meta", `<span class="author">${escapeHtml(m.author.name)}</span>${
    m.author.bot ? '<span class="tag">APP</span>' : ""}<time datetime="${escapeHtml(m.timestamp)}">${time}</time>`));
  const body = el("div", "content");
  if (m.loading) body.append(el("span", "loading", `${escapeHtml(m.author.name)} is thinking…`));
  else body.innerHTML = markdown(m.content);
  if (m.edited) body.append(el("span", "edited", "(edited)"));
  li.append(body);
  const used = new Set();
  for (const e of m.embeds) li.append(renderEmbed(e, m, used));
  for (const a of m.attachments) if (!used.has(a.id)) li.append(renderAttachment(a, m));
  if (m.ephemeral) li.append(el("div", "ephemeral-note", "Only you can see this"));
  const actions = el("div", "actions");
  const reply = el("button", "reply", "Reply");
  reply.title = "Reply to this message";
  reply.onclick = () => startReply(m);
  const apps = el("button", "apps", "Apps ▾");
  apps.title = "Message commands (or right-click the message)";
  apps.onclick = (event) => openMenu(event, m);
  actions.append(reply, apps);
  li.append(actions);
  li.addEventListener("contextmenu", (event) => {
    if (String(window.getSelection())) return;  // selected text: the browser's own menu (Copy)
    event.preventDefault();
    openMenu(event, m);
  });
  sizes.observe(li);
  return li;
}

function renderEmbed(e, m, used) {
  const box = el("div", "embed");
  if (e.title) box.append(el("div", "title", markdown(e.title)));
  if (e.description) box.append(el("div", "description", markdown(e.description)));
  for (const f of e.fields) {
    box.append(el("div", "field-name", markdown(f.name)), el("div", "field-value", markdown(f.value)));
  }
  if (e.image && e.image.startsWith("attachment://")) {
    const a = m.attachments.find((x) => x.filename === e.image.slice("attachment://".length));
    if (a) { box.append(renderAttachment(a, m)); used.add(a.id); }
  }
  if (e.footer) box.append(el("div", "footer", escapeHtml(e.footer)));
  return box;
}

function renderAttachment(a, m) {
  const type = a.content_type || "";
  if (type.startsWith("image/") || /\.(png|jpe?g|gif|webp)$/i.test(a.filename)) {
    const img = el("img", "attachment");
    img.addEventListener("load", followEnd);
    img.src = a.url;
    img.alt = a.filename;
    return img;
  }
  const box = el("div", "file");
  if (type.startsWith("audio/") || /\.(ogg|mp3|wav|m4a|opus|webm)$/i.test(a.filename)) {
    box.append(el("div", "", m.voice_message ? `♪ Voice message${a.duration ? ` · ${a.duration.toFixed(1)} s` : ""}`
      : `♪ ${escapeHtml(a.filename)}`));
    const audio = document.createElement("audio");
    audio.controls = true;
    audio.src = a.url;
    audio.preload = "none";
    box.append(audio);
  } else {
    box.innerHTML = `<a href="${escapeHtml(a.url)}" download="${escapeHtml(a.filename)}">${escapeHtml(a.filename)}</a> <span class="size">${formatSize(a.size)}</span>`;
  }
  return box;
}

function formatSize(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

function addNotice(text) {
  const li = el("li", "notice", escapeHtml(text));
  sizes.observe(li);
  $("messages").append(li);
  followEnd();
}

// -- typing ---------------------------------------------------------------------------------
function showTyping(channelId, name) {
  if (channelId !== state.channel) return;
  hook.typingShown = (hook.typingShown || 0) + 1;
  $("typing-name").textContent = name;
  $("typing").hidden = false;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, 10000);  // Discord's typing lasts 10 s
}
function hideTyping() { $("typing").hidden = true; clearTimeout(state.typingTimer); }

// -- composing ------------------------------------------------------------------------------
function startReply(m) {
  state.replyTo = m.id;
  $("replying-name").textContent = m.author.name;
  $("replying-text").textContent = (m.content || "").slice(0, 80);
  $("replying").hidden = false;
  $("input").focus();
}
function cancelReply() { state.replyTo = null; $("replying").hidden = true; }

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

// Every action carries X-Playground: 1, which no HTML form can send (web.py refuses posts without it).
async function post(url, form) {
  const response = await fetch(url, form instanceof FormData
    ? { method: "POST", headers: { "X-Playground": "1" }, body: form }
    : { method: "POST", headers: { "Content-Type": "application/json", "X-Playground": "1" }, body: JSON.stringify(form) });
  let data = {};
  try { data = await response.json(); } catch (e) { data = { error: await response.text().catch(() => "") }; }
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

async function send() {
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
async function trainOnSample() {
  note("sent", null);
  state.stuck = true;
  const form = new FormData();
  form.append("user", state.user);
  form.append("channel", state.channel);
  form.append("content", "!train sample");
  try { await post("/api/send", form); showError(""); } catch (e) { showError(e.message); }
}

function clearFile() { state.file = null; $("file").value = ""; $("attached").hidden = true; }

function autosize() {
  const input = $("input");
  input.style.height = "auto";
  input.style.height = Math.min(input.scrollHeight, 200) + "px";
}

// -- slash command suggestions --------------------------------------------------------------
// What the Discord client offers here: the server's commands, or in a DM the global ones offered in DMs.
function commandsHere() { return isDm(state.channel) ? state.dmCommands : state.commands; }
function currentSuggestions() {
  const text = $("input").value;
  const match = /^\/(\S*)$/.exec(text);
  if (!match) return [];
  return commandsHere().filter((c) => c.name.startsWith(match[1].toLowerCase()));
}

function updateSuggestions() {
  const list = currentSuggestions();
  const ul = $("suggestions");
  if (!list.length) return hideSuggestions();
  state.suggestion = Math.min(state.suggestion, list.length - 1);
  ul.replaceChildren(...list.map((c, i) => {
    const li = el("li", i === state.suggestion ? "selected" : "");
    li.innerHTML = `<b>/${escapeHtml(c.name)}</b>` + c.options.map((o) =>
      `<span class="opt${o.required ? " required" : ""}">${o.kind === "subcommand" || o.kind === "group"
        ? escapeHtml(o.name) : `${escapeHtml(o.name)}:${o.kind === "file" ? "file" : ""}`}</span>`).join("") +
      `<span class="desc">${escapeHtml(c.description)}</span>`;
    li.onmousedown = (event) => { event.preventDefault(); complete(c); };
    return li;
  }));
  ul.hidden = false;
}

function hideSuggestions() { $("suggestions").hidden = true; state.suggestion = 0; state.choices = []; }

// An option registered with autocomplete (e.g. /select_dataset name:) asks the bot, as Discord does.
function autocompleteContext() {
  const text = $("input").value;
  const m = /^\/(\S+)\s([\s\S]*)$/.exec(text);
  const c = m && commandsHere().find((x) => x.name === m[1].toLowerCase());
  const tail = c && /(?:^|\s)([\w-]+):([^:]*)$/.exec(m[2]);
  const option = tail && c.options.find((o) => o.name === tail[1] && o.autocomplete);
  if (!option) return null;
  return { command: c.name, option: option.name, value: tail[2], prefix: text.slice(0, text.length - tail[2].length) };
}

async function updateChoices() {
  const context = autocompleteContext();
  if (!context) { state.choices = []; return; }
  const asked = $("input").value;
  let answer;
  try {
    answer = await post("/api/autocomplete", { user: state.user, channel: state.channel, command: context.command,
      option: context.option, value: context.value });
  } catch (e) { return; }
  if ($("input").value !== asked) return;  // typed on meanwhile
  state.choices = answer.choices.map((choice) => ({ ...choice, prefix: context.prefix }));
  state.suggestion = 0;
  renderChoices();
}

function renderChoices() {
  const ul = $("suggestions");
  if (!state.choices.length) { ul.hidden = true; return; }
  ul.replaceChildren(...state.choices.map((choice, i) => {
    const li = el("li", i === state.suggestion ? "selected choice" : "choice", escapeHtml(choice.name));
    li.onmousedown = (event) => { event.preventDefault(); pickChoice(choice); };
    return li;
  }));
  ul.hidden = false;
}

function pickChoice(choice) {
  $("input").value = choice.prefix + String(choice.value);
  hideSuggestions();
  $("input").focus();
}

function complete(c) {
  const first = c.options.find((o) => o.required && o.kind !== "file");
  $("input").value = `/${c.name} ` + (first && first.kind !== "subcommand" && first.kind !== "group" ? `${first.name}:` : "");
  hideSuggestions();
  $("input").focus();
}

// -- message menus and modals ---------------------------------------------------------------
function openMenu(event, m) {
  const menu = $("menu");
  menu.replaceChildren(el("div", "label", "Apps"));
  const menus = isDm(m.channel_id) ? state.dmMenus : state.menus;
  if (!menus.length) menu.append(el("div", "label", "(no message commands registered)"));
  for (const name of menus) {
    const b = el("button", "", escapeHtml(name));
    b.onclick = () => { closeMenu(); useMenu(name, m); };
    menu.append(b);
  }
  menu.hidden = false;
  // Right-click: at the pointer, as Discord does; the Apps button: under the button.
  let left, top;
  if (event.type === "contextmenu") { left = event.clientX; top = event.clientY; }
  else { const r = event.target.getBoundingClientRect(); left = r.right - menu.offsetWidth; top = r.bottom + 4; }
  if (top + menu.offsetHeight > innerHeight - 8) top = Math.max(8, top - menu.offsetHeight);
  menu.style.left = `${Math.max(8, Math.min(left, innerWidth - menu.offsetWidth - 8))}px`;
  menu.style.top = `${top}px`;
  event.stopPropagation();
}
function closeMenu() { $("menu").hidden = true; }

async function useMenu(name, m) {
  try {
    const answer = await post("/api/menu", { user: state.user, name, message: m.id });
    showError("");
    if (answer.modal) openModal(answer.interaction, answer.modal);
  } catch (e) { showError(e.message); }
}

function openModal(interaction, modal) {
  $("modal-title").textContent = modal.title;
  const fields = $("modal-fields");
  fields.replaceChildren(...modal.fields.map((f) => {
    const wrap = el("div", "field");
    const label = el("label", "", escapeHtml(f.label));
    const input = document.createElement(f.paragraph ? "textarea" : "input");
    input.name = f.custom_id;
    input.value = f.value;
    input.placeholder = f.placeholder;
    input.required = f.required;
    if (f.max) input.maxLength = f.max;
    label.htmlFor = input.id = `modal-${f.custom_id}`;
    wrap.append(label, input);
    return wrap;
  }));
  const dialog = $("modal");
  $("modal-form").onsubmit = async (event) => {
    event.preventDefault();
    const values = {};
    for (const input of fields.querySelectorAll("input, textarea")) values[input.name] = input.value;
    dialog.close();
    try { await post("/api/modal", { user: state.user, interaction, values }); showError(""); }
    catch (e) { showError(e.message); }
  };
  $("modal-cancel").onclick = () => dialog.close();
  dialog.showModal();
}

// -- voice ----------------------------------------------------------------------------------
function updateVoice(data) {
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

async function toggleVoice() {
  const join = $("voice-button").dataset.joined !== "1";
  if (join) audioContext();  // created in the click, so the browser lets it play
  try { await post("/api/voice", { user: state.user, join }); showError(""); }
  catch (e) { showError(e.message); }
}

function play(buffer) {
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

// -- voice messages -------------------------------------------------------------------------
async function toggleRecording() {
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
  $("file").addEventListener("change", () => {
    state.file = $("file").files[0] || null;
    $("attached-name").textContent = state.file ? `${state.file.name} (${formatSize(state.file.size)})` : "";
    $("attached").hidden = !state.file;
  });
  $("cancel-file").onclick = clearFile;
  $("cancel-reply").onclick = cancelReply;
  $("voice-button").onclick = toggleVoice;
  $("record").onclick = toggleRecording;
  $("train-sample").onclick = trainOnSample;
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
