// The edgedetect page: polls /api/status and /api/events, shows /stream.mjpg, and builds
// [zones.NAME] / [lines.NAME] snippets from clicks on a frozen frame. No framework, no build step,
// nothing from other sites: the token travels in the HttpOnly cookie that /?token=... set.
"use strict";

const STATUS_EVERY_MS = 2000;
const EVENTS_EVERY_MS = 3000;
const EVENTS_SHOWN = 30;
const BARE_KEY = /^[A-Za-z0-9_-]{1,64}$/; // TOML bare key: what config.py accepts as a name

const $ = (id) => document.getElementById(id);

function say(text) {
  const m = $("message");
  m.textContent = text;
  m.hidden = !text;
}

const GONE = "The service is not answering (stopped, restarting or out of reach): "
  + "the numbers below are from before; retrying every few seconds.";

async function getJson(url) {
  let r;
  try {
    r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
  } catch (err) {
    // the browser's own words ("Failed to fetch", "NetworkError ...") do not say what happened
    throw new Error(GONE);
  }
  if (r.status === 401) {
    throw new Error("Not authorised: open this page as /?token=YOUR_TOKEN ([http] token).");
  }
  if (!r.ok) throw new Error(url + " answered " + r.status);
  return r.json();
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function uptime(s) {
  s = Math.floor(s || 0);
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

function fill(list, entries) {
  list.replaceChildren(...entries.map(([k, v]) => {
    const li = el("li");
    li.append(el("span", k), el("span", v));
    return li;
  }));
}

function show(s) {
  const badge = $("state");
  badge.textContent = s.status;
  badge.className = "badge " + (s.status === "ok" ? "ok" : "bad");
  $("persons").textContent = s.persons;
  const zones = s.zones || {};
  fill($("zones"), Object.keys(zones).map((z) => ["zone " + z, String(zones[z])]));
  const lines = s.lines || {};
  fill($("lines"), Object.keys(lines).map((name) => {
    const v = lines[name];
    const text = v && typeof v === "object"
      ? Object.keys(v).map((k) => k + " " + v[k]).join(", ") : String(v);
    return ["line " + name, text];
  }));
  const facts = [
    ["fps", Number(s.fps || 0).toFixed(1)],
    ["inference", s.inference_ms == null ? "-" : Number(s.inference_ms).toFixed(1) + " ms"],
    ["dropped frames", String(s.dropped_frames ?? "-")],
    ["uptime", uptime(s.uptime_s)],
    ["source", s.source + (s.source_connected ? "" : " (not connected)")],
    ["model", (s.model || "-") + " @ " + s.threshold],
    ["snapshots", s.snapshots ? "on" : "off"],
    ["clips", s.clips ? "on" : "off"],
  ];
  const dl = $("health");
  dl.replaceChildren(...facts.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  dl.dataset.fps = String(s.fps || 0);
}

function eventText(e) {
  const where = e.zone ? " " + e.zone : e.line ? " " + e.line + " " + (e.direction || "") : "";
  const who = e.track_id !== undefined ? " #" + e.track_id : "";
  return e.type.replace(/_/g, " ") + where + who;
}

// `count` is the line's total in that direction for a crossing, the zone's head count for a
// zone event, the people in view for the rest
function countText(e) {
  if (e.type === "line_crossed") return e.count + " crossed " + (e.direction || "") + " so far";
  if (e.zone) return e.count + " in " + e.zone;
  return e.count + " in view";
}

function showEvents(events) {
  $("no-events").hidden = events.length > 0;
  $("events").replaceChildren(...events.map((e) => {
    const li = el("li");
    if (e.snapshot_url) {
      const img = el("img");
      img.src = e.snapshot_url;
      img.alt = "snapshot";
      img.loading = "lazy";
      li.append(img);
    } else if (e.snapshot_missing) {
      li.append(el("span", "snapshot deleted", "muted"));
    }
    const body = el("div");
    body.append(el("div", eventText(e), "what"),
      el("div", new Date(e.timestamp * 1000).toLocaleString() + " · " + countText(e), "muted"));
    if (e.clip_url) {
      const a = el("a", "clip");
      a.href = e.clip_url;
      a.target = "_blank";
      a.rel = "noopener";
      body.append(a);
    } else if (e.clip_recording) {
      body.append(el("span", "clip recording", "muted"));
    } else if (e.clip_deleted) {
      body.append(el("span", "clip deleted", "muted"));
    } else if (e.clip_missing) {
      body.append(el("span", "clip not saved (see the log)", "muted"));
    }
    li.append(body);
    return li;
  }));
}

async function poll(url, every, use) {
  try {
    use(await getJson(url));
    say("");
  } catch (err) {
    $("state").textContent = "offline";
    $("state").className = "badge bad";
    say(err.message);
  }
  setTimeout(() => poll(url, every, use), every);
}

// ---------------------------------------------------------------- live view
function keepLive() {
  const img = $("live");
  img.addEventListener("error", () => {
    // the service restarted or reloaded: reconnect after a pause
    setTimeout(() => { img.src = "/stream.mjpg?t=" + Date.now(); }, 3000);
  });
}

// ---------------------------------------------------------------- editor
const editor = { points: [], frame: null };

function kind() {
  return document.querySelector("input[name=kind]:checked").value;
}

function snippet() {
  const name = $("name").value.trim();
  const pts = editor.points;
  const okName = BARE_KEY.test(name);
  $("name").classList.toggle("invalid", !okName);
  const fmt = (p) => "[" + p[0].toFixed(3) + ", " + p[1].toFixed(3) + "]";
  if (!okName) return ["", "The name may hold only letters, digits, _ and - (1 to 64)."];
  if (kind() === "zone") {
    if (pts.length < 3) {
      return ["", "Click at least 3 points for a zone (" + pts.length + " so far)."];
    }
    return ["[zones." + name + "]\npolygon = [" + pts.map(fmt).join(", ") + "]\n",
      pts.length + " points; the polygon closes by itself."];
  }
  if (pts.length < 2) return ["", "Click 2 points for a line (" + pts.length + " so far)."];
  return ["[lines." + name + "]\npoints = [" + pts.map(fmt).join(", ") + "]\n",
    "\"in\" is crossing from the left of the line seen walking from point 1 to point 2."];
}

function draw() {
  const c = $("canvas"), g = c.getContext("2d");
  g.fillStyle = "#222";
  g.fillRect(0, 0, c.width, c.height);
  if (editor.frame) g.drawImage(editor.frame, 0, 0, c.width, c.height);
  else {
    g.fillStyle = "#aaa";
    g.font = "20px sans-serif";
    g.fillText("Press \u201cFreeze frame\u201d first", 20, 40);
  }
  const pts = editor.points.map(([x, y]) => [x * c.width, y * c.height]);
  const r = Math.max(4, c.width / 160);
  g.lineWidth = Math.max(2, c.width / 320);
  g.strokeStyle = g.fillStyle = kind() === "zone" ? "#ffd400" : "#00e0ff";
  if (pts.length > 1) {
    g.beginPath();
    g.moveTo(pts[0][0], pts[0][1]);
    pts.slice(1).forEach(([x, y]) => g.lineTo(x, y));
    if (kind() === "zone" && pts.length > 2) g.closePath();
    g.stroke();
  }
  pts.forEach(([x, y]) => { g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.fill(); });
  const [text, hint] = snippet();
  $("snippet").value = text;
  $("hint").textContent = hint;
}

function freeze() {
  const img = new Image();
  img.onload = () => {
    const c = $("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    editor.frame = img;
    draw();
  };
  // in the editor's hint, not the page message: the next successful poll clears that one
  img.onerror = () => { $("hint").textContent =
    "No current frame to freeze (/snapshot.jpg: none yet, or the source is lost); try again soon."; };
  img.src = "/snapshot.jpg?t=" + Date.now();
}

function click(ev) {
  if (!editor.frame) { // a point on the placeholder would be placed blind
    $("hint").textContent = "Press \u201cFreeze frame\u201d first: the points go on a still.";
    return;
  }
  const c = $("canvas"), box = c.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  const p = [clamp((ev.clientX - box.left) / box.width),
    clamp((ev.clientY - box.top) / box.height)];
  if (kind() === "line" && editor.points.length >= 2) editor.points = [];
  editor.points.push(p);
  draw();
}

function copy() {
  const t = $("snippet");
  if (!t.value) return;
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(t.value);
  } else { // plain http on the LAN: no clipboard API
    t.select();
    document.execCommand("copy");
  }
}

function setupEditor() {
  $("freeze").addEventListener("click", freeze);
  $("canvas").addEventListener("click", click);
  $("undo").addEventListener("click", () => { editor.points.pop(); draw(); });
  $("clear").addEventListener("click", () => { editor.points = []; draw(); });
  $("name").addEventListener("input", draw);
  $("copy").addEventListener("click", copy);
  document.querySelectorAll("input[name=kind]").forEach((r) => r.addEventListener("change", () => {
    editor.points = [];
    const n = $("name");
    if (/^(zone|line)\d*$/.test(n.value)) n.value = kind() + "1";
    draw();
  }));
  draw();
}

// ---------------------------------------------------------------- start
if (new URLSearchParams(location.search).has("token")) {
  // the cookie holds it now; keep it out of the address bar, history and screenshots
  history.replaceState(null, "", location.pathname);
}
keepLive();
setupEditor();
poll("/api/status", STATUS_EVERY_MS, show);
poll("/api/events?limit=" + EVENTS_SHOWN, EVENTS_EVERY_MS, (d) => showEvents(d.events));
