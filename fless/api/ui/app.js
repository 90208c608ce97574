// The fless dashboard: a view of the cluster through the v1 API.
//
// Every number on the page comes from the same REST API the CLI uses, with
// the key the user typed (kept in sessionStorage: this tab only, gone when it
// closes). Everything the API returns is put in the page as text, never as
// HTML, so a function's name or output cannot become markup or script.

const KEY_ITEM = "fless.key";
const REFRESH_MS = 5000;
const NAME = /^[_a-zA-Z0-9]{1,160}$/;
const INVOCATIONS_SHOWN = 50;
const LOGS_SHOWN = 10;

const state = {
  key: null,
  session: 0, // counts logins and logouts: an answer for an ended session is dropped
  timer: null,
  refreshing: false,
  selected: null, // {module, name} of the function whose details are shown
  wantedInvoke: null, // "module/name" to select in the invoke form after a refresh
};

const STALE = -1; // the status of an answer that came after its session ended

const $ = (id) => document.getElementById(id);

// -- talking to the API ------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail, headers = null, ms = 0) {
    super(detail);
    this.status = status;
    this.headers = headers;
    this.ms = ms;
  }
}

// One API call; resolves to {status, data, headers, ms} or throws ApiError with
// the API's own error detail. `ms` is the latency seen by the browser, from the
// request until the whole answer is read.
async function call(method, path, { json, form } = {}) {
  const headers = { Authorization: `Bearer ${state.key}` };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form; // the browser writes the multipart boundary itself
  }
  const session = state.session;
  const started = performance.now();
  let response;
  let text;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit" });
    text = await response.text();
  } catch (err) {
    throw new ApiError(0, `the core did not answer (${err.message})`);
  }
  const ms = performance.now() - started;
  if (session !== state.session) throw new ApiError(STALE, "the session ended");
  let parsed = null;
  if (text && (response.headers.get("Content-Type") || "").includes("json")) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const detail = parsed?.errors?.detail ?? (text || response.statusText || "no detail");
    throw new ApiError(response.status, String(detail), response.headers, ms);
  }
  return { status: response.status, data: parsed?.data ?? null, headers: response.headers, ms };
}

const fnPath = (module, name) =>
  `/v1/fn/${encodeURIComponent(module)}` + (name === undefined ? "" : `/${encodeURIComponent(name)}`);

// -- building the page (text only, never innerHTML) --------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = value;
    else if (key === "className") node.className = value;
    else if (key === "onClick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function show(id, text, kind = "") {
  const node = $(id);
  node.textContent = text;
  node.className = `message ${kind}`.trim();
}

// Each cell learns its column's heading, which a phone shows beside it when
// the table's rows are stacked (style.css); a screen reader uses the headers.
function labelCells(table) {
  const headings = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent);
  for (const row of table.querySelectorAll("tbody tr")) {
    Array.from(row.children).forEach((cell, i) => cell.setAttribute("data-label", headings[i] ?? ""));
  }
}

function fields(dl, pairs) {
  dl.replaceChildren();
  for (const [term, value] of pairs) {
    dl.append(el("dt", { text: term }), el("dd", { text: value }));
  }
}

function memorySize(bytes) {
  const mib = bytes / 1048576;
  return mib < 1024 ? `${Math.round(mib)} MiB` : `${(mib / 1024).toFixed(1)} GiB`;
}

function size(bytes) {
  if (typeof bytes !== "number") return "?";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

// Seconds since the epoch or an ISO 8601 string (the API gives both) as a Date.
const toDate = (value) => (typeof value === "number" ? new Date(value < 1e12 ? value * 1000 : value) : new Date(value));

function when(value) {
  if (value === undefined || value === null) return "?";
  const date = toDate(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

// A moment as a <time>: the reader's local time, the exact instant in its datetime.
function moment(value) {
  if (value === undefined || value === null) return "—";
  const date = toDate(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return el("time", { datetime: date.toISOString(), text: date.toLocaleString() });
}

// A word in a coloured pill; the colour repeats the word, never replaces it.
const GOOD = new Set(["alive", "ok", "connected"]);
const WARNING = new Set(["suspect"]);

function badge(word) {
  const text = String(word || "unknown");
  const tone = GOOD.has(text) ? "good" : WARNING.has(text) ? "warning" : "bad";
  return el("span", { className: `badge ${tone}`, text });
}

const duration = (ms) => (typeof ms === "number" ? `${ms.toFixed(1)} ms` : "—");

// -- login -------------------------------------------------------------------

async function login(key) {
  state.session += 1;
  state.key = key;
  show("login-message", "Checking the key…");
  try {
    await call("GET", "/v1/fn"); // the cheapest call that needs a key
  } catch (err) {
    if (err.status === STALE) return;
    state.key = null;
    const text =
      err.status === 401
        ? `The core refused this key (401 Unauthorized): ${err.message}.`
        : `Could not log in (${err.status || "no answer"}): ${err.message}.`;
    show("login-message", text, "error");
    return;
  }
  sessionStorage.setItem(KEY_ITEM, key);
  $("key").value = "";
  show("login-message", "");
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  await refresh();
  state.timer = setInterval(() => {
    if (!document.hidden) refresh();
  }, REFRESH_MS);
}

function logout(reason = "") {
  state.session += 1;
  clearInterval(state.timer);
  state.timer = null;
  state.key = null;
  state.selected = null;
  sessionStorage.removeItem(KEY_ITEM);
  for (const id of ["nodes-body", "functions-list", "invocations-body", "invoke-function", "scripts-body"]) {
    $(id).replaceChildren();
  }
  $("function-detail").hidden = true;
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("summary").textContent = "";
  $("updated").textContent = "";
  show("login-message", reason, reason ? "error" : "");
  $("key").focus();
}

// -- the panels ----------------------------------------------------------------

async function refresh() {
  if (state.refreshing || state.key === null) return;
  state.refreshing = true;
  try {
    const [nodes, functions] = await Promise.all([
      refreshNodes(),
      refreshFunctions(),
      refreshInvocations(),
      refreshScripts(),
    ]);
    summarize(nodes, functions);
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err.status === 401) {
      logout(`The core no longer accepts this key (401): ${err.message}. Log in again.`);
    }
  } finally {
    state.refreshing = false;
  }
}

// Runs one panel's refresh; a failure shows in that panel, but a refused key
// ends the session.
async function panel(messageId, work) {
  try {
    const result = await work();
    return result;
  } catch (err) {
    if (err.status === 401) throw err;
    if (err.status === STALE) return null;
    show(messageId, `Could not refresh (${err.status || "no answer"}): ${err.message}`, "error");
    return null;
  }
}

function summarize(nodes, functions) {
  const parts = [];
  if (nodes) {
    const alive = nodes.filter((n) => n.state === "alive").length;
    parts.push(`${alive} of ${nodes.length} node${nodes.length === 1 ? "" : "s"} alive`);
  }
  if (functions) {
    const modules = new Set(functions.map((f) => f.module)).size;
    const where = modules > 1 ? ` in ${modules} modules` : "";
    parts.push(`${functions.length} function${functions.length === 1 ? "" : "s"}${where}`);
  }
  $("summary").textContent = parts.join(" · ");
}

function refreshNodes() {
  return panel("nodes-message", async () => {
    const { data } = await call("GET", "/v1/nodes");
    const nodes = data ?? [];
    $("nodes-body").replaceChildren(
      ...nodes.map((node) =>
        el(
          "tr",
          { "data-node": node.name },
          el("th", { scope: "row", text: node.name }),
          el("td", { text: node.role ?? "?" }),
          el("td", {}, badge(node.state)),
          el("td", { text: node.arch ?? "?" }),
          el("td", {}, memory(node)),
          el("td", { text: node.worker_name ?? "—" }),
          el("td", { text: (node.labels ?? []).join(", ") || "—" }),
        ),
      ),
    );
    labelCells($("nodes-body").closest("table"));
    show("nodes-message", nodes.length ? "" : "No nodes: the core sees no member yet.");
    return nodes;
  });
}

// The APP scripts, each with its tags and the workers each tag's blocks list.
function refreshScripts() {
  return panel("scripts-message", async () => {
    const { data } = await call("GET", "/v1/scripts/app");
    const scripts = data ?? [];
    $("scripts-body").replaceChildren(
      ...scripts.map((script) => {
        const tags = Object.entries(script.script?.tags ?? {});
        return el(
          "tr",
          { "data-script": script.name },
          el("th", { scope: "row", text: script.name }),
          el("td", { text: tags.map(([tag]) => tag).join(", ") }),
          el("td", { text: tags.map(([tag, entry]) => `${tag}: ${blockWorkers(entry)}`).join("; ") }),
        );
      }),
    );
    labelCells($("scripts-body").closest("table"));
    show("scripts-message", scripts.length ? "" : "No APP scripts: calls go to the most free memory.");
    return scripts;
  });
}

function blockWorkers(entry) {
  return (entry.blocks ?? [])
    .map((block) =>
      block.workers === "*"
        ? "*"
        : block.workers.map((w) => (typeof w === "string" ? w : `label ${w.label}`)).join(", "),
    )
    .join(" then ");
}

function memory(node) {
  if (typeof node.mem_total !== "number" || typeof node.mem_free !== "number") {
    return el("span", { text: "not reported" });
  }
  const label = `${memorySize(node.mem_free)} free of ${memorySize(node.mem_total)}`;
  return el(
    "span",
    { className: "memory" },
    el("meter", {
      min: "0",
      max: String(node.mem_total),
      value: String(node.mem_free),
      low: String(node.mem_total * 0.1),
      optimum: String(node.mem_total),
      "aria-label": label,
    }),
    el("span", { text: label }),
  );
}

function refreshFunctions() {
  return panel("functions-message", async () => {
    const { data: modules } = await call("GET", "/v1/fn");
    const names = (modules ?? []).map((m) => m.name).sort();
    const listed = await Promise.all(names.map((m) => call("GET", fnPath(m))));
    const functions = [];
    const blocks = listed.map(({ data }, i) => {
      const fns = (data?.functions ?? []).map((f) => ({ ...f, module: names[i] }));
      functions.push(...fns);
      // The default module always exists; it is worth a heading only when it holds something.
      return names[i] === "_" && fns.length === 0 ? null : moduleBlock(names[i], fns);
    });
    $("functions-list").replaceChildren(...blocks.filter((b) => b !== null));
    show("functions-message", functions.length ? "" : "No functions yet: upload one below.");
    fillInvokeChoices(functions);
    await refreshDetail(functions);
    return functions;
  });
}

function moduleBlock(module, functions) {
  const title = el("h3", { text: `Module ${module}` });
  if (functions.length === 0) {
    return el("div", { className: "module", "data-module": module }, title, el("p", { text: "No functions." }));
  }
  const rows = functions.map((f) => {
    const selected = state.selected?.module === module && state.selected?.name === f.name;
    return el(
      "tr",
      { "data-function": `${module}/${f.name}`, className: selected ? "selected" : null },
      el(
        "th",
        { scope: "row" },
        el("button", {
          type: "button",
          className: "link",
          text: f.name,
          "aria-pressed": String(selected),
          onClick: () => select(module, f.name),
        }),
      ),
      el("td", { text: size(f.size) }),
      el("td", { text: `${f.memory} MiB` }),
      el("td", { text: `${f.timeout} ms` }),
      el("td", { text: f.abi ?? "?" }),
      el("td", { text: cachedOn(f) }),
    );
  });
  const table = el(
    "table",
    {},
    el("caption", { className: "visually-hidden", text: `Functions of module ${module}` }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ...["Name", "Size", "Memory", "Timeout", "ABI", "Cached on"].map((t) => el("th", { scope: "col", text: t })),
      ),
    ),
    el("tbody", {}, ...rows),
  );
  labelCells(table);
  return el("div", { className: "module", "data-module": module }, title, el("div", { className: "scroll" }, table));
}

function cachedOn(fn) {
  if (!Array.isArray(fn.cached_on)) return "—";
  return fn.cached_on.length ? fn.cached_on.join(", ") : "no worker yet";
}

function fillInvokeChoices(functions) {
  const selectNode = $("invoke-function");
  const wanted = state.wantedInvoke ?? selectNode.value;
  state.wantedInvoke = null;
  const values = functions.map((f) => `${f.module}/${f.name}`);
  selectNode.replaceChildren(...values.map((v) => el("option", { value: v, text: v })));
  if (values.includes(wanted)) selectNode.value = wanted;
}

async function select(module, name) {
  state.selected = { module, name };
  state.wantedInvoke = `${module}/${name}`;
  for (const row of document.querySelectorAll("tr[data-function]")) {
    const on = row.dataset.function === `${module}/${name}`;
    row.classList.toggle("selected", on);
    row.querySelector("button")?.setAttribute("aria-pressed", String(on));
  }
  if (Array.from($("invoke-function").options).some((o) => o.value === state.wantedInvoke)) {
    $("invoke-function").value = state.wantedInvoke;
  }
  await panel("functions-message", () => refreshDetail(null));
}

async function refreshDetail(functions) {
  const chosen = state.selected;
  const box = $("function-detail");
  if (chosen === null) {
    box.hidden = true;
    return;
  }
  if (functions !== null && !functions.some((f) => f.module === chosen.module && f.name === chosen.name)) {
    state.selected = null; // deleted since
    box.hidden = true;
    return;
  }
  const { data: fn } = await call("GET", fnPath(chosen.module, chosen.name));
  $("detail-title").textContent = `${chosen.module}/${chosen.name}`;
  fields($("detail-fields"), [
    ["ABI", fn.abi ?? "?"],
    ["Size", size(fn.size)],
    ["Memory", `${fn.memory} MiB`],
    ["Timeout", `${fn.timeout} ms`],
    ["Retries", String(fn.retries ?? 0)],
    ["HTTP allowed to", (fn.http_allow ?? []).join(", ") || "nobody"],
    ["Cached on", cachedOn(fn)],
    ["SHA-256", fn.hash ?? "?"],
    ["Created", when(fn.created)],
    ["Updated", when(fn.updated)],
  ]);
  showBindings(fn);
  box.hidden = false;
  await refreshLogs(chosen);
}

// A function's events and sinks with how they fare (fn.bindings), shown only
// for a function that has some.
function showBindings(fn) {
  const box = $("detail-bindings");
  const events = fn.events ?? [];
  const sinks = fn.sinks ?? [];
  if (events.length === 0 && sinks.length === 0) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const states = fn.bindings ?? {};
  const parts = [el("h4", { text: "Bindings" })];
  if (events.length) {
    const rows = events.map((event, i) => eventRow(event, states.events?.[i], i));
    parts.push(bindingTable("Events", ["Event", "Where", "State", "Messages", "Last", "Next tick"], rows));
  }
  if (sinks.length) {
    const rows = sinks.map((sink, i) => sinkRow(sink, states.sinks?.[i], i));
    parts.push(bindingTable("Sinks", ["Sink", "Where", "Delivered", "Failures", "Last try", "Last error"], rows));
  }
  const outbox = typeof states.outbox === "number" ? String(states.outbox) : "?";
  parts.push(el("p", { id: "bindings-outbox", text: `Results waiting in the core's outbox: ${outbox}` }));
  box.replaceChildren(...parts);
  box.hidden = false;
}

function bindingTable(caption, headings, rows) {
  const node = el(
    "table",
    {},
    el("caption", { className: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, ...headings.map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, ...rows),
  );
  labelCells(node);
  return el("div", { className: "scroll" }, node);
}

// Where a binding connects: a URL, a broker's topic, or a schedule.
function where({ type, params = {} }) {
  if (type === "cron") return `${params.schedule ?? "?"} (${params.timezone ?? "UTC"})`;
  if (type === "mqtt") {
    const port = params.port ?? (params.tls ? 8883 : 1883);
    return `${params.host ?? "?"}:${port} ${params.topic ?? "?"}`;
  }
  return String(params.url ?? "?");
}

function eventRow(event, fares, i) {
  let stateCell = "unknown";
  if (fares) {
    const error = !fares.connected && fares.error ? ` ${fares.error}` : "";
    stateCell = el("span", {}, badge(fares.connected ? "connected" : "disconnected"), error);
  }
  const cron = event.type === "cron";
  return el(
    "tr",
    { "data-event": String(i) },
    el("th", { scope: "row", text: String(event.type ?? "?") }),
    el("td", { className: "mono", text: where(event) }),
    el("td", {}, stateCell),
    el("td", { text: cron || typeof fares?.messages !== "number" ? "—" : String(fares.messages) }),
    el("td", {}, moment(cron ? fares?.last_tick : fares?.last_message)),
    el("td", {}, moment(cron ? fares?.next_tick : undefined)),
  );
}

function sinkRow(sink, fares, i) {
  const count = (n) => (typeof n === "number" ? String(n) : "—");
  return el(
    "tr",
    { "data-sink": String(i) },
    el("th", { scope: "row", text: String(sink.type ?? "?") }),
    el("td", { className: "mono", text: where(sink) }),
    el("td", { text: count(fares?.delivered) }),
    el("td", { text: count(fares?.failures) }),
    el("td", {}, moment(fares?.last)),
    el("td", { text: fares?.error ?? "—" }),
  );
}

async function refreshLogs({ module, name }) {
  const box = $("detail-logs");
  let data;
  try {
    ({ data } = await call("GET", `${fnPath(module, name)}/logs?limit=${LOGS_SHOWN}`));
  } catch (err) {
    if (err.status === 401 || err.status === STALE) throw err;
    const text = err.status === 404 ? "This core keeps no function logs." : `Logs unavailable: ${err.message}`;
    box.replaceChildren(el("p", { text }));
    return;
  }
  const runs = data ?? [];
  if (runs.length === 0) {
    box.replaceChildren(el("p", { text: "No logs yet." }));
    return;
  }
  box.replaceChildren(
    ...runs.map((run) =>
      el(
        "div",
        { className: "log" },
        el(
          "p",
          { className: "log-head", "data-log": run.id },
          `${when(run.started)} · ${run.worker || "?"} · ${duration(run.duration_ms)} · `,
          badge(run.outcome),
        ),
        run.error ? el("p", { className: "message error", text: run.error }) : null,
        el("pre", { text: logText(run) }),
      ),
    ),
  );
}

function logText(run) {
  const lines = run.logs ?? [];
  if (lines.length === 0) return "(nothing logged)";
  return lines.join("\n") + (run.truncated ? "\n… (truncated)" : "");
}

function refreshInvocations() {
  return panel("invocations-message", async () => {
    let data;
    try {
      ({ data } = await call("GET", `/v1/invocations?limit=${INVOCATIONS_SHOWN}`));
    } catch (err) {
      if (err.status !== 404) throw err;
      $("invocations-body").replaceChildren();
      show("invocations-message", "This core does not record invocations.");
      return null;
    }
    const calls = data ?? [];
    $("invocations-body").replaceChildren(
      ...calls.map((c) =>
        el(
          "tr",
          { "data-invocation": c.id },
          el("td", { text: when(c.started) }),
          el("th", { scope: "row", text: `${c.module}/${c.name}` }),
          el("td", { text: c.worker || "—" }),
          el("td", {}, badge(c.outcome)),
          el("td", { text: String(c.attempts ?? "—") }),
          el("td", { text: duration(c.duration_ms) }),
        ),
      ),
    );
    labelCells($("invocations-body").closest("table"));
    show("invocations-message", calls.length ? "" : "No invocations yet.");
    return calls;
  });
}

// -- the forms -------------------------------------------------------------------

function parseObject(text, what) {
  if (!text.trim()) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(0, `${what} is not valid JSON: ${err.message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(0, `${what} must be a JSON object, like {"key": "value"}`);
  }
  return value;
}

function failure(err) {
  return err.status ? `Failed (${err.status}): ${err.message}` : `Not sent: ${err.message}`;
}

async function upload(event) {
  event.preventDefault();
  const module = $("upload-module").value.trim() || "_";
  const name = $("upload-name").value.trim();
  const file = $("upload-code").files[0];
  const metadataText = $("upload-metadata").value;
  try {
    if (!NAME.test(module)) throw new ApiError(0, "a module name is letters, digits and _ only");
    if (!NAME.test(name)) throw new ApiError(0, "a function name is letters, digits and _ only");
    if (!file) throw new ApiError(0, "choose a .wasm file");
    const metadata = parseObject(metadataText, "the metadata");
    show("upload-message", `Uploading ${module}/${name}…`);
    if (module !== "_") {
      try {
        await call("POST", "/v1/fn", { json: { module: { name: module } } });
      } catch (err) {
        // 422 "already exists": the module exists, which is what we want.
        if (err.status !== 422 || !err.message.includes("already exists")) throw err;
      }
    }
    const form = new FormData();
    form.append("name", name);
    form.append("code", file, file.name);
    if (metadata !== null) form.append("metadata", JSON.stringify(metadata));
    const { data } = await call("POST", fnPath(module), { form });
    const workers = typeof data.workers === "number" ? `, taken by ${data.workers} worker${data.workers === 1 ? "" : "s"}` : "";
    show("upload-message", `Uploaded ${module}/${name}: ${size(data.size)}, ${data.abi} ABI, ${data.memory} MiB${workers}.`, "ok");
    state.selected = { module, name };
    state.wantedInvoke = `${module}/${name}`;
    await refresh();
  } catch (err) {
    if (err.status === STALE) return;
    if (err.status === 401) return logout(`The core no longer accepts this key (401): ${err.message}.`);
    show("upload-message", failure(err), "error");
  }
}

async function invoke(event) {
  event.preventDefault();
  const chosen = $("invoke-function").value;
  const facts = $("invoke-facts");
  const output = $("invoke-output");
  facts.hidden = true;
  output.hidden = true;
  if (!chosen) {
    show("invoke-message", "No function to invoke: upload one first.", "error");
    return;
  }
  const [module, name] = chosen.split("/");
  try {
    const args = parseObject($("invoke-args").value, "the arguments") ?? {};
    show("invoke-message", `Invoking ${chosen}…`);
    const result = await call("POST", fnPath(module, name), { json: { args } });
    show("invoke-message", `${chosen} answered.`, "ok");
    fields(facts, invocationFacts(result.status, result.headers, result.ms));
    facts.hidden = false;
    output.textContent = JSON.stringify(result.data, null, 2);
    output.hidden = false;
  } catch (err) {
    if (err.status === STALE) return;
    if (err.status === 401) return logout(`The core no longer accepts this key (401): ${err.message}.`);
    show("invoke-message", failure(err), "error");
    if (err.status) {
      fields(facts, invocationFacts(err.status, err.headers, err.ms));
      facts.hidden = false;
    }
  }
  refresh(); // the call is in the recent ones now, and maybe in the logs
}

function invocationFacts(status, headers, ms) {
  const facts = [
    ["Status", String(status)],
    ["Worker", headers?.get("X-Fless-Worker") ?? "—"],
    ["Latency", `${ms.toFixed(1)} ms (in this browser)`],
  ];
  const attempts = headers?.get("X-Fless-Attempts");
  if (attempts) facts.push(["Attempts", attempts]);
  const id = headers?.get("X-Fless-Invocation");
  if (id) facts.push(["Invocation", id]);
  return facts;
}

// A chosen file names the function unless the user already did.
function nameFromFile() {
  const file = $("upload-code").files[0];
  const input = $("upload-name");
  if (file && !input.value.trim()) {
    input.value = file.name.replace(/\.wasm$/i, "").replace(/[^_a-zA-Z0-9]/g, "_").slice(0, 160);
  }
}

// -- start ---------------------------------------------------------------------------

function start() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    if (!key) {
      show("login-message", "Enter a key first.", "error");
      return;
    }
    login(key);
  });
  $("logout").addEventListener("click", () => logout());
  $("upload-form").addEventListener("submit", upload);
  $("upload-code").addEventListener("change", nameFromFile);
  $("invoke-form").addEventListener("submit", invoke);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  const saved = sessionStorage.getItem(KEY_ITEM);
  if (saved) login(saved);
  else $("key").focus();
}

start();
