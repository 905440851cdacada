// maskface page: plain JavaScript, no build step. Drop two photos to verify, one to identify.
"use strict";

const files = { a: null, b: null, q: null };
const keyInput = document.getElementById("key");
keyInput.value = sessionStorage.getItem("maskface-key") || "";
keyInput.addEventListener("change", () => {
  sessionStorage.setItem("maskface-key", keyInput.value.trim());
  run("verify");
  run("identify");
});

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "style") node.style.cssText = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function checkServer() {
  const status = document.getElementById("status");
  try {
    const answer = await fetch("/readyz");
    const body = await answer.json();
    status.textContent = body.ready ? `ready · ${body.model} · ${body.gallery ? "gallery open" : "no gallery"}`
                                    : `not ready: ${body.reason}`;
    status.classList.toggle("ready", !!body.ready);
    if (!body.ready) setTimeout(checkServer, 2000);
  } catch (e) {
    status.textContent = "server unreachable";
    setTimeout(checkServer, 2000);
  }
}

function setupDrop(label) {
  const slot = label.dataset.slot;
  const input = label.querySelector("input");
  const preview = label.querySelector("img");
  const hint = label.querySelector("span");
  const take = (file) => {
    if (!file) return;
    files[slot] = file;
    preview.src = URL.createObjectURL(file);
    preview.hidden = false;
    hint.hidden = true;
    run(slot === "q" ? "identify" : "verify");
  };
  input.addEventListener("change", () => take(input.files[0]));
  label.addEventListener("dragover", (e) => { e.preventDefault(); label.classList.add("over"); });
  label.addEventListener("dragleave", () => label.classList.remove("over"));
  label.addEventListener("drop", (e) => {
    e.preventDefault();
    label.classList.remove("over");
    take(e.dataTransfer.files[0]);
  });
}

async function call(path, form) {
  const headers = {};
  const key = keyInput.value.trim();
  if (key) headers["Authorization"] = `Bearer ${key}`;
  const answer = await fetch(path, { method: "POST", body: form, headers });
  let body;
  try { body = await answer.json(); } catch (e) { body = { error: { message: `HTTP ${answer.status}` } }; }
  if (!answer.ok) throw new Error((body.error && body.error.message) || `HTTP ${answer.status}`);
  return body;
}

function faceCard(face, title) {
  const masked = face.masked === null ? "mask unknown" : face.masked ? "masked" : "unmasked";
  const card = el("div", { class: "face" },
    face.chip ? el("img", { src: face.chip, alt: `aligned face ${title}` }) : "",
    el("div", {}, el("strong", {}, title)),
    el("span", { class: `badge ${face.masked ? "masked" : "unmasked"}` },
       face.mask_probability === null ? masked : `${masked} (p=${face.mask_probability.toFixed(2)})`));
  if (face.completed) card.append(el("span", { class: "badge completed" }, "completed"));
  card.append(el("div", { class: "numbers" }, `detector ${face.detector}`));
  return card;
}

// Where a score sits on a 0..1 bar whose threshold mark is at `mark` (distances: lower = same).
function position(score, threshold, metric) {
  if (metric === "euclidean") return { at: Math.min(score / (2 * threshold), 1), mark: 0.5 };
  return { at: Math.max(0, Math.min((score + 1) / 2, 1)), mark: (threshold + 1) / 2 };
}

function meter(score, threshold, metric, same) {
  const { at, mark } = position(score, threshold, metric);
  return el("div", { class: "meter", title: `score ${score} vs threshold ${threshold}` },
    el("div", { class: "fill", style: `width:${(at * 100).toFixed(1)}%;background:${same ? "#1b7f3b" : "#b3261e"}` }),
    el("div", { class: "mark", style: `left:${(mark * 100).toFixed(1)}%` }));
}

function describe(metric) {
  return metric === "euclidean" ? "distance (lower = more alike)" : "similarity (higher = more alike)";
}

function showVerify(body, out) {
  const same = body.same;
  out.replaceChildren(
    el("div", { class: "faces" }, faceCard(body.faces[0], "A"), faceCard(body.faces[1], "B")),
    el("div", { class: `verdict ${same ? "same" : "different"}`, id: "verdict" }, same ? "Same person" : "Different people"),
    meter(body.score, body.threshold, body.metric, same),
    el("div", { class: "numbers", id: "verify-numbers" },
       `score ${body.score.toFixed(3)} ${same ? (body.metric === "euclidean" ? "<" : "≥") : (body.metric === "euclidean" ? "≥" : "<")} ` +
       `threshold ${body.threshold.toFixed(3)} · ${describe(body.metric)} · ${body.model}`));
}

function showIdentify(body, out) {
  const rows = body.candidates.map((c) => el("tr", {},
    el("td", {}, c.person), el("td", {}, c.score.toFixed(3)), el("td", {}, c.threshold.toFixed(3)),
    el("td", { class: c.accepted ? "yes" : "no" }, c.accepted ? "match" : "below threshold")));
  const verdict = body.unknown ? "Unknown: nobody in the gallery matches"
                               : `Best match: ${body.candidates[0].person}`;
  out.replaceChildren(
    el("div", { class: "faces" }, faceCard(body.face, "query")),
    el("div", { class: `verdict ${body.unknown ? "different" : "same"}`, id: "identify-verdict" }, verdict),
    el("table", { id: "matches" },
       el("thead", {}, el("tr", {}, el("th", {}, "person"), el("th", {}, `score (${body.metric})`),
                         el("th", {}, "threshold"), el("th", {}, ""))),
       el("tbody", {}, ...rows)));
}

async function run(kind) {
  const out = document.getElementById(`${kind}-result`);
  const form = new FormData();
  if (kind === "verify") {
    if (!files.a || !files.b) return;
    form.append("a", files.a);
    form.append("b", files.b);
  } else {
    if (!files.q) return;
    form.append("image", files.q);
  }
  out.replaceChildren(el("div", { class: "busy" }, "working…"));
  try {
    const query = kind === "verify" ? "/v1/verify?chips=true" : "/v1/identify?chips=true&top=5";
    const body = await call(query, form);
    (kind === "verify" ? showVerify : showIdentify)(body, out);
  } catch (e) {
    out.replaceChildren(el("div", { class: "error", id: `${kind}-error` }, e.message));
  }
}

document.querySelectorAll(".drop").forEach(setupDrop);
checkServer();
