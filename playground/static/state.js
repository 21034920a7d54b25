// What the page knows: the state every module reads and writes, the hooks for tests and the
// benchmark, and lookups in the world the server sent ("hello": guild, people, channels).

export const $ = (id) => document.getElementById(id);

// Hooks for tests and the benchmark (read with page.evaluate).
window.playground = {
  connected: false, samplesPlayed: 0, peak: 0, firstSampleAt: null, framesReceived: 0,
  log: [],  // [{kind, id, t}] most recent last: "sent", "render"
};
export const hook = window.playground;

export const state = {
  world: null, messages: new Map(), channel: null, user: null, commands: [], menus: [], dmCommands: [], dmMenus: [],
  unread: new Map(),  // channel id -> messages that arrived there while another channel was open (DMs)
  replyTo: null, file: null, voiceMembers: [], online: false, typingTimer: null, choices: [],
  audio: null, playHead: 0, speakingUntil: 0, ws: null, suggestion: 0, recorder: null,
  stuck: true,  // the list follows its end (Discord's behaviour) until the person scrolls up
  scrolledTo: 0,  // the list's scrollTop when last seen
};

Object.defineProperty(hook, "stuck", { get: () => state.stuck });  // following the list's end?

export function note(kind, id) {
  hook.log.push({ kind, id, t: performance.now() });
  if (hook.log.length > 2000) hook.log.splice(0, 1000);
}

export function userName(id) { return (state.world && state.world.users[id]) || "unknown"; }
export function channelName(id) {
  if (isDm(id)) return state.world.bot.name;  // a DM is named after the other end: the bot
  const c = state.world && state.world.channels.find((x) => x.id === id);
  return c ? c.name : "?";
}
// The DM channels: each person's with the bot; this page shows its own person's only.
export function isDm(id) { return !!state.world && state.world.people.some((p) => p.dm === id); }
export function myDm() {
  const me = state.world && state.world.people.find((p) => p.id === state.user);
  return me ? me.dm : null;
}
