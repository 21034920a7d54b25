// Text to HTML, safely: escaping, the elements the page builds, and enough of Discord's markdown.

import { channelName, userName } from "./state.js";

export function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function el(tag, cls, html) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (html !== undefined) e.innerHTML = html;
  return e;
}

export function formatSize(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

// Enough of Discord's markdown to read the bot, on text escaped first (so nothing the text
// says becomes HTML): code blocks and inline code (kept verbatim), block quotes ("> " quotes a
// line, ">>> " the rest of the message), bold, italics, underline, strikethrough, mentions.
export function markdown(text) {
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
