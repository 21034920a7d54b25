// The bot's application commands in the page: slash command suggestions and autocomplete as the
// person types, and a message's Apps menu with the modal a command may open.

import { post, showError } from "./api.js";
import { $, isDm, state } from "./state.js";
import { el, escapeHtml } from "./text.js";

// -- slash command suggestions --------------------------------------------------------------
// What the Discord client offers here: the server's commands, or in a DM the global ones offered in DMs.
function commandsHere() { return isDm(state.channel) ? state.dmCommands : state.commands; }
export function currentSuggestions() {
  const text = $("input").value;
  const match = /^\/(\S*)$/.exec(text);
  if (!match) return [];
  return commandsHere().filter((c) => c.name.startsWith(match[1].toLowerCase()));
}

export function updateSuggestions() {
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

export function hideSuggestions() { $("suggestions").hidden = true; state.suggestion = 0; state.choices = []; }

// An option registered with autocomplete (e.g. /select_dataset name:) asks the bot, as Discord does.
export function autocompleteContext() {
  const text = $("input").value;
  const m = /^\/(\S+)\s([\s\S]*)$/.exec(text);
  const c = m && commandsHere().find((x) => x.name === m[1].toLowerCase());
  const tail = c && /(?:^|\s)([\w-]+):([^:]*)$/.exec(m[2]);
  const option = tail && c.options.find((o) => o.name === tail[1] && o.autocomplete);
  if (!option) return null;
  return { command: c.name, option: option.name, value: tail[2], prefix: text.slice(0, text.length - tail[2].length) };
}

export async function updateChoices() {
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

export function renderChoices() {
  const ul = $("suggestions");
  if (!state.choices.length) { ul.hidden = true; return; }
  ul.replaceChildren(...state.choices.map((choice, i) => {
    const li = el("li", i === state.suggestion ? "selected choice" : "choice", escapeHtml(choice.name));
    li.onmousedown = (event) => { event.preventDefault(); pickChoice(choice); };
    return li;
  }));
  ul.hidden = false;
}

export function pickChoice(choice) {
  $("input").value = choice.prefix + String(choice.value);
  hideSuggestions();
  $("input").focus();
}

export function complete(c) {
  const first = c.options.find((o) => o.required && o.kind !== "file");
  $("input").value = `/${c.name} ` + (first && first.kind !== "subcommand" && first.kind !== "group" ? `${first.name}:` : "");
  hideSuggestions();
  $("input").focus();
}

// -- message menus and modals ---------------------------------------------------------------
export function openMenu(event, m) {
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
export function closeMenu() { $("menu").hidden = true; }

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
