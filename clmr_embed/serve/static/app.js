// The clmr-embed library page: map, track panel, unit listening, upload. No framework, no CDN.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { library: null, tracks: new Map(), stopAt: null, uploadMarker: null };
const $ = (id) => document.getElementById(id);

function status(text) { $("status").textContent = text || ""; }

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

// viridis, 5 stops: low scores dark blue, high scores yellow
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function colour(t) {
  const x = Math.min(Math.max(t, 0), 1) * (STOPS.length - 1);
  const i = Math.min(Math.floor(x), STOPS.length - 2), f = x - i;
  const rgb = STOPS[i].map((c, k) => Math.round(c + f * (STOPS[i + 1][k] - c)));
  return `rgb(${rgb.join(",")})`;
}

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

function drawMap(library) {
  const map = $("map");
  map.replaceChildren();
  for (const track of library.tracks) {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("class", "track");
    dot.setAttribute("cx", track.x);
    dot.setAttribute("cy", -track.y);
    dot.setAttribute("r", library.tracks.length > 500 ? 0.012 : 0.035);
    dot.setAttribute("fill", "#60a5fa");
    dot.dataset.id = track.id;
    const title = document.createElementNS(SVG, "title");
    title.textContent = track.relpath;
    dot.appendChild(title);
    dot.addEventListener("click", () => selectTrack(track.id, true));
    map.appendChild(dot);
  }
  if (library.tracks.length <= 40) {  // names fit on small maps; large ones keep the tooltips
    for (const track of library.tracks) {
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", track.x + 0.05);
      label.setAttribute("y", -track.y + 0.015);
      label.textContent = track.relpath.split("/").pop();
      map.appendChild(label);
    }
  }
}

async function colourBy(label) {
  const dots = $("map").querySelectorAll("circle.track");
  if (!label) { dots.forEach((d) => d.setAttribute("fill", "#60a5fa")); return; }
  const { scores } = await getJSON(`/api/tag-scores?label=${encodeURIComponent(label)}`);
  const low = Math.min(...scores), high = Math.max(...scores);
  dots.forEach((dot, i) => dot.setAttribute("fill", colour((scores[i] - low) / (high - low || 1))));
}

function play(trackId, startS, endS) {
  if (!state.library.audio) return;
  const player = $("player");
  const src = `/audio/${encodeURIComponent(trackId)}`;
  if (!player.src.endsWith(src)) player.src = src;
  state.stopAt = endS ?? null;
  const start = () => {
    player.currentTime = startS || 0;
    player.play().catch((err) => status(`cannot play this file here: ${err.message}`));
  };
  if (player.readyState >= 1) start(); else player.addEventListener("loadedmetadata", start, { once: true });
  if (player.preload === "none") player.load();
}

function listTags(node, tags) {
  node.replaceChildren(...tags.map((t) => {
    const li = el("li", {}, `${t.label} `);
    li.appendChild(el("span", { class: "score" }, t.score.toFixed(3)));
    return li;
  }));
}

function listNeighbours(node, neighbours) {
  node.replaceChildren(...neighbours.map((n) => {
    const li = el("li");
    const button = el("button", { type: "button" }, n.relpath);
    button.addEventListener("click", () => selectTrack(n.track_id, true));
    li.append(button, " ", el("span", { class: "score" }, n.score.toFixed(3)));
    return li;
  }));
}

function drawTaggram(taggram, trackId) {
  const canvas = $("taggram"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!taggram || !taggram.probs.length) return;
  const means = taggram.labels.map((_, j) => taggram.probs.reduce((s, row) => s + row[j], 0));
  const shown = means.map((m, j) => [m, j]).sort((a, b) => b[0] - a[0]).slice(0, 10).map((p) => p[1]);
  const left = 90, rowH = canvas.height / shown.length, colW = (canvas.width - left) / taggram.probs.length;
  const high = Math.max(...taggram.probs.flat(), 1e-6);
  ctx.font = "11px system-ui"; ctx.textBaseline = "middle"; ctx.fillStyle = "#334155";
  shown.forEach((j, r) => {
    ctx.fillStyle = "#334155";
    ctx.fillText(taggram.labels[j].slice(0, 14), 2, (r + 0.5) * rowH);
    taggram.probs.forEach((row, w) => {
      ctx.fillStyle = colour(row[j] / high);
      ctx.fillRect(left + w * colW, r * rowH, Math.ceil(colW), Math.ceil(rowH));
    });
  });
  canvas.onclick = (event) => {
    const rect = canvas.getBoundingClientRect();
    const x = (event.clientX - rect.left) * (canvas.width / rect.width) - left;
    const w = Math.floor(x / colW);
    if (w >= 0 && w < taggram.starts_s.length) {
      play(trackId, taggram.starts_s[w], taggram.starts_s[w] + state.library.window_s);
    }
  };
}

async function selectTrack(trackId, autoplay) {
  $("map").querySelectorAll("circle.selected").forEach((d) => d.classList.remove("selected"));
  const dot = $("map").querySelector(`circle[data-id="${CSS.escape(trackId)}"]`);
  if (dot) dot.classList.add("selected");
  if (autoplay) play(trackId, 0, null);
  try {
    const track = await getJSON(`/api/tracks/${encodeURIComponent(trackId)}`);
    $("track-title").textContent = track.relpath;
    listTags($("tags"), track.tags);
    listNeighbours($("neighbours"), track.neighbours);
    drawTaggram(track.taggram, trackId);
  } catch (err) { status(err.message); }
}

async function findUnitWindows(event) {
  event.preventDefault();
  const units = $("unit-input").value.split(/[\s,]+/).filter(Boolean).join(",");
  try {
    const { windows } = await getJSON(`/api/units?units=${encodeURIComponent(units)}&top_k=20`);
    $("unit-windows").replaceChildren(...windows.map((w) => {
      const li = el("li", { "data-activation": w.activation, "data-track": w.track_id });
      const button = el("button", { type: "button" }, `▶ ${w.relpath} @ ${w.start_s.toFixed(1)} s`);
      button.addEventListener("click", () => {
        document.querySelectorAll("#unit-windows li.playing").forEach((n) => n.classList.remove("playing"));
        li.classList.add("playing");
        play(w.track_id, w.start_s, w.end_s);
      });
      li.append(button, " ", el("span", { class: "score" }, w.activation.toFixed(4)));
      return li;
    }));
    status("");
  } catch (err) { status(err.message); }
}

async function upload(event) {
  event.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) { status("choose an audio file first"); return; }
  status(`embedding ${file.name}…`);
  try {
    const placed = await getJSON(`/api/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
    const result = $("upload-result");
    result.replaceChildren(el("p", { class: "upload-name" }, `${placed.name} (${placed.duration_s.toFixed(0)} s)`));
    const tags = el("ol", { id: "upload-tags" }), near = el("ol", { id: "upload-neighbours" });
    listTags(tags, placed.tags);
    listNeighbours(near, placed.neighbours);
    result.append(el("h3", {}, "top tags"), tags, el("h3", {}, "nearest tracks"), near);
    if (state.uploadMarker) state.uploadMarker.remove();
    const star = document.createElementNS(SVG, "circle");
    star.setAttribute("class", "upload");
    star.setAttribute("cx", placed.xy[0]);
    star.setAttribute("cy", -placed.xy[1]);
    star.setAttribute("r", 0.045);
    $("map").appendChild(star);
    state.uploadMarker = star;
    status("");
  } catch (err) { status(err.message); }
}

async function start() {
  const library = await getJSON("/api/library");
  state.library = library;
  $("summary").textContent = `${library.store} · ${library.model} · ${library.tracks.length} tracks`;
  $("projection").textContent = `map: ${library.projection.toUpperCase()}`;
  $("max-unit").textContent = library.embedding_dim - 1;
  $("no-audio").hidden = library.audio;
  $("player").hidden = !library.audio;
  for (const label of library.labels) $("colour").appendChild(el("option", { value: label }, label));
  drawMap(library);
  $("colour").addEventListener("change", (e) => colourBy(e.target.value).catch((err) => status(err.message)));
  $("unit-form").addEventListener("submit", findUnitWindows);
  $("unit-random").addEventListener("click", (e) => {
    $("unit-input").value = Math.floor(Math.random() * library.embedding_dim);
    findUnitWindows(e);
  });
  $("upload-form").addEventListener("submit", upload);
  $("player").addEventListener("timeupdate", () => {
    const player = $("player");
    if (state.stopAt !== null && player.currentTime >= state.stopAt) { player.pause(); state.stopAt = null; }
  });
}

start().catch((err) => status(`cannot load the library: ${err.message}`));
