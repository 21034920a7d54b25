// What the page draws: the server's channels and the person's DM with the bot, the open
// channel's messages (embeds, attachments, replies, "used /command"), notices and typing.
// for_user: the one person who may see a message (an ephemeral one, a DM), null for everyone.

import { openMenu } from "./commands.js";
import { cancelReply, startReply } from "./composer.js";
import { $, channelName, hook, isDm, myDm, note, state } from "./state.js";
import { el, escapeHtml, formatSize, markdown } from "./text.js";
import { updateVoice } from "./voice.js";

// -- the world ------------------------------------------------------------------------------
export function setupWorld() {
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
function visible(m) {
  return m.channel_id === state.channel && !m.deleted && (m.for_user === null || m.for_user === state.user);
}

export function renderAll() {
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

export function upsert(m) {
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

export function remove(id) {
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
export function scrolled() {
  const l = $("messages");
  if (atEnd()) state.stuck = true;
  else if (l.scrollTop < state.scrolledTo) state.stuck = false;
  state.scrolledTo = l.scrollTop;
}
function atEnd() { const l = $("messages"); return l.scrollHeight - l.scrollTop - l.clientHeight < 4; }
function followEnd() { if (state.stuck) scrollDown(); }
const sizes = new ResizeObserver(followEnd);  // every message, and the list's own box

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

export function addNotice(text) {
  const li = el("li", "notice", escapeHtml(text));
  sizes.observe(li);
  $("messages").append(li);
  followEnd();
}

// -- typing ---------------------------------------------------------------------------------
export function showTyping(channelId, name) {
  if (channelId !== state.channel) return;
  hook.typingShown = (hook.typingShown || 0) + 1;
  $("typing-name").textContent = name;
  $("typing").hidden = false;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, 10000);  // Discord's typing lasts 10 s
}
function hideTyping() { $("typing").hidden = true; clearTimeout(state.typingTimer); }
