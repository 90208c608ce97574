// The fless dashboard: a view of the cluster through the v1 API.
//
// Every number on the page comes from the same REST API the CLI uses, with
// the key the user typed (kept in sessionStorage: this tab only, gone when it
// closes). Everything the API returns is put in the page as text, never as
// HTML, so a function's name or output cannot become markup or script.

import { metricTotals, plot, withPoint } from "./chart.js";

const KEY_ITEM = "fless.key";
const REFRESH_MS = 5000;
const NAME = /^[_a-zA-Z0-9]{1,160}$/;
const INVOCATIONS_SHOWN = 50;
const LOGS_SHOWN = 10;
const CACHED_LOOKUPS = 100; // functions whose cache one refresh asks about
const ERROR_LOOKUPS = 5; // functions whose logs one refresh reads for failed calls' errors

const state = {
  key: null,
  session: 0, // counts logins and logouts: an answer for an ended session is dropped
  timer: null,
  refreshing: false,
  again: false, // a refresh was asked for while one ran
  selected: null, // {module, name} of the function whose details are shown
  wantedInvoke: null, // "module/name" to select in the invoke form after a refresh
  errors: new Map(), // a failed invocation's id -> its error ("" when none was found)
  openOutcomes: new Set(), // the invocations whose error the user opened
  shown: null, // the selected function as its GET answered
  formFor: null, // "module/name" whose settings the update form holds
  scripts: [], // the APP scripts' names, from the last refresh
  chart: { last: null, points: [] }, // the last /metrics totals, and the points drawn
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

// A function's memory cap, which the API gives in MiB.
const mebibytes = (mib) => (typeof mib === "number" ? memorySize(mib * 1048576) : "?");

// A time cap or a duration the API gives in milliseconds, as a person reads it:
// 10000 is "10 s", 2500 "2.5 s", 250 "250 ms".
function millis(ms) {
  if (typeof ms !== "number") return "?";
  if (ms < 1000) return `${Number(ms.toFixed(1))} ms`;
  return `${Number((ms / 1000).toFixed(ms < 10000 ? 2 : 1))} s`;
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

const duration = (ms) => (typeof ms === "number" ? millis(ms) : "—");

// An invocation's outcome as what it is: the function's own failure (it ran and
// failed: amber, "failed", "trapped"...) or the platform's (it could not run or
// its worker went away: red), with the recorded outcome and the function's
// error, when known, in the pill's title.
const OUTCOMES = {
  ok: ["ok", "good", "the function answered"],
  function: ["failed", "failed", "the function reported an error"],
  trap: ["trapped", "failed", "the function trapped (a crash in its code)"],
  memory: ["out of memory", "failed", "the function hit its memory cap"],
  output: ["output refused", "failed", "the function's output was over the cap or not JSON"],
  timeout: ["timed out", "failed", "the function ran out of time"],
  lost: ["worker lost", "bad", "the platform: the worker running it went away"],
  no_worker: ["no worker", "bad", "the platform: no worker could run it"],
};

function outcomeBadge(outcome, error) {
  const [word, tone, meaning] = OUTCOMES[outcome] ?? [String(outcome || "unknown"), "bad", "unknown outcome"];
  const title = `${meaning} (outcome ${outcome})` + (error ? `: ${error}` : "");
  return el("span", { className: `badge ${tone}`, text: word, title, "data-outcome": outcome });
}

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
  state.again = false;
  state.shown = null;
  state.formFor = null;
  state.scripts = [];
  state.errors.clear();
  state.openOutcomes.clear();
  state.chart = { last: null, points: [] };
  sessionStorage.removeItem(KEY_ITEM);
  for (const id of [
    "nodes-body",
    "functions-list",
    "invocations-body",
    "invoke-function",
    "scripts-body",
    "chart-body",
    "chart-rate",
    "chart-latency",
  ]) {
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
  if (state.key === null) return;
  if (state.refreshing) {
    // A change made during a refresh is shown by one more, right after it.
    state.again = true;
    return;
  }
  state.refreshing = true;
  try {
    const [nodes, functions] = await Promise.all([
      refreshNodes(),
      refreshFunctions(),
      refreshInvocations(),
      refreshScripts(),
      refreshChart(),
    ]);
    summarize(nodes, functions);
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err.status === 401) {
      logout(`The core no longer accepts this key (401): ${err.message}. Log in again.`);
    }
  } finally {
    state.refreshing = false;
    if (state.again) {
      state.again = false;
      refresh();
    }
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
          el("th", { scope: "row" }, clipped(node.name)),
          el("td", { text: node.role ?? "?" }),
          el("td", {}, badge(node.state)),
          el("td", { text: node.arch ?? "?" }),
          el("td", {}, memory(node)),
          el("td", {}, clipped(node.worker_name ?? "—")),
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
          el("th", { scope: "row" }, clipped(script.name)),
          el("td", { text: tags.map(([tag]) => tag).join(", ") }),
          el("td", { text: tags.map(([tag, entry]) => `${tag}: ${blockWorkers(entry)}`).join("; ") }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              className: "danger small",
              text: "Delete",
              "data-delete-script": script.name,
              onClick: () => deleteScript(script.name),
            }),
          ),
        );
      }),
    );
    state.scripts = scripts.map((script) => script.name);
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

// A member's free memory as a bar: green for an alive one (amber when little is
// free), grey with its state for a suspect or dead one, whose figures are only
// what it last reported.
function memory(node) {
  if (typeof node.mem_total !== "number" || typeof node.mem_free !== "number") {
    return el("span", { text: "not reported" });
  }
  const alive = node.state === "alive";
  const figures = `${memorySize(node.mem_free)} free of ${memorySize(node.mem_total)}`;
  const label = alive ? figures : `${node.state ?? "unknown"}: last reported ${figures}`;
  const share = node.mem_total > 0 ? Math.min(1, Math.max(0, node.mem_free / node.mem_total)) : 0;
  const tone = !alive ? "stale" : share < 0.1 ? "low" : "plenty";
  const fill = el("span", { className: "fill" });
  fill.style.width = `${(share * 100).toFixed(1)}%`; // CSSOM, which the page's CSP allows
  return el(
    "span",
    { className: "memory" },
    el(
      "span",
      {
        className: `bar ${tone}`,
        role: "meter",
        "aria-valuemin": "0",
        "aria-valuemax": String(node.mem_total),
        "aria-valuenow": String(node.mem_free),
        "aria-label": label,
      },
      fill,
    ),
    el("span", { text: label }),
  );
}

function refreshFunctions() {
  return panel("functions-message", async () => {
    const { data: modules } = await call("GET", "/v1/fn");
    const names = (modules ?? []).map((m) => m.name).sort();
    const listed = await Promise.all(names.map((m) => call("GET", fnPath(m))));
    const byModule = listed.map(({ data }, i) => (data?.functions ?? []).map((f) => ({ ...f, module: names[i] })));
    const functions = byModule.flat();
    await learnCachedOn(functions);
    const blocks = byModule.map((fns, i) =>
      // The default module always exists; it is worth a heading only when it holds something.
      names[i] === "_" && fns.length === 0 ? null : moduleBlock(names[i], fns),
    );
    $("functions-list").replaceChildren(...blocks.filter((b) => b !== null));
    show("functions-message", functions.length ? "" : "No functions yet: upload one below.");
    fillInvokeChoices(functions);
    fillModuleChoices(names);
    await refreshDetail(functions);
    return functions;
  });
}

// A module's listing leaves out where each function's code is cached: that
// answer asks every worker, so only a function's own GET gives it
// (`cached_on`, docs/API.md). One such GET per function fills the column,
// for the first CACHED_LOOKUPS functions; the others show "—" there and
// their cache in their details.
async function learnCachedOn(functions) {
  await Promise.all(
    functions.slice(0, CACHED_LOOKUPS).map(async (f) => {
      try {
        const { data } = await call("GET", fnPath(f.module, f.name));
        f.cached_on = data?.cached_on;
      } catch (err) {
        if (err.status === 401 || err.status === STALE) throw err;
        // Deleted since the listing, or a worker did not answer: left unknown.
      }
    }),
  );
}

function moduleBlock(module, functions) {
  const remove =
    module === "_"
      ? null
      : el("button", {
          type: "button",
          className: "danger small",
          text: "Delete module",
          "data-delete-module": module,
          onClick: () => deleteModule(module, functions.length),
        });
  const title = el("div", { className: "module-head" }, el("h3", { text: `Module ${module}` }), remove);
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
          className: "link clip",
          text: f.name,
          title: `${module}/${f.name}`,
          "aria-pressed": String(selected),
          onClick: () => select(module, f.name),
        }),
      ),
      el("td", { text: size(f.size) }),
      el("td", { text: mebibytes(f.memory) }),
      el("td", { text: millis(f.timeout) }),
      el("td", { text: f.abi ?? "?" }),
      el("td", { className: "cached-on" }, clipped(cachedOn(f))),
    );
  });
  const table = el(
    "table",
    { className: "functions" },
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
    state.shown = null;
    state.formFor = null;
    return;
  }
  if (functions !== null && !functions.some((f) => f.module === chosen.module && f.name === chosen.name)) {
    state.selected = null; // deleted since
    state.shown = null;
    state.formFor = null;
    box.hidden = true;
    return;
  }
  const { data: fn } = await call("GET", fnPath(chosen.module, chosen.name));
  state.shown = fn;
  $("detail-title").textContent = `${chosen.module}/${chosen.name}`;
  fillUpdateForm(`${chosen.module}/${chosen.name}`, fn);
  fields($("detail-fields"), [
    ["ABI", fn.abi ?? "?"],
    ["Size", size(fn.size)],
    ["Memory", mebibytes(fn.memory)],
    ["Timeout", millis(fn.timeout)],
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

// The update form starts from the function's settings, filled in once per
// function shown, so a refresh does not undo what the user is typing.
function fillUpdateForm(shown, fn) {
  if (state.formFor === shown) return;
  state.formFor = shown;
  $("update-memory").value = typeof fn.memory === "number" ? String(fn.memory) : "";
  $("update-timeout").value = typeof fn.timeout === "number" ? String(fn.timeout / 1000) : "";
  for (const id of ["update-code", "update-events", "update-sinks"]) $(id).value = "";
  show("update-message", "");
  show("bindings-message", "");
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
    parts.push(bindingTable("Events", ["Event", "Where", "State", "Messages", "Last", "Next tick", ""], rows));
  }
  if (sinks.length) {
    const rows = sinks.map((sink, i) => sinkRow(sink, states.sinks?.[i], i));
    parts.push(bindingTable("Sinks", ["Sink", "Where", "Delivered", "Failures", "Last try", "Last error", ""], rows));
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
    el("td", {}, removeButton("events", i)),
  );
}

const removeButton = (kind, i) =>
  el("button", {
    type: "button",
    className: "danger small",
    text: "Remove",
    [`data-remove-${kind}`]: String(i),
    onClick: () => removeBinding(kind, i),
  });

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
    el("td", {}, removeButton("sinks", i)),
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
          outcomeBadge(run.outcome, run.error),
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
    await learnErrors(calls);
    $("invocations-body").replaceChildren(
      ...calls.map((c) =>
        el(
          "tr",
          { "data-invocation": c.id },
          el("td", { text: when(c.started) }),
          el("th", { scope: "row" }, clipped(`${c.module}/${c.name}`)),
          el("td", {}, clipped(c.worker || "—")),
          el("td", {}, outcomeCell(c)),
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

const failedByFunction = (outcome) => OUTCOMES[outcome]?.[1] === "failed";

// The error of each failed call, which the core's record of it lacks: the
// workers' logs of its function keep it under the invocation's id. Looked up
// once per call, for a few functions per refresh.
async function learnErrors(calls) {
  const wanted = new Map();
  for (const c of calls) {
    if (failedByFunction(c.outcome) && !state.errors.has(c.id)) wanted.set(`${c.module}/${c.name}`, c);
  }
  const asked = Array.from(wanted.values()).slice(0, ERROR_LOOKUPS);
  await Promise.all(
    asked.map(async (c) => {
      let runs = [];
      try {
        ({ data: runs } = await call("GET", `${fnPath(c.module, c.name)}/logs?limit=${INVOCATIONS_SHOWN}`));
      } catch (err) {
        if (err.status === 401 || err.status === STALE) throw err;
      }
      for (const run of runs ?? []) state.errors.set(run.id, run.error ?? "");
      if (!state.errors.has(c.id)) state.errors.set(c.id, "");
    }),
  );
  if (state.errors.size > 4 * INVOCATIONS_SHOWN) {
    const kept = new Set(calls.map((c) => c.id));
    for (const id of state.errors.keys()) if (!kept.has(id)) state.errors.delete(id);
  }
}

// A failed call's pill opens onto its error (a title is no use on a phone).
function outcomeCell(c) {
  const error = state.errors.get(c.id);
  const pill = outcomeBadge(c.outcome, error);
  if (!failedByFunction(c.outcome)) return pill;
  const box = el(
    "details",
    { className: "outcome", "data-error-of": c.id },
    el("summary", {}, pill),
    el("p", {
      className: "message error",
      text: error || "No error message: the workers' logs no longer hold this call.",
    }),
  );
  box.open = state.openOutcomes.has(c.id);
  box.addEventListener("toggle", () => {
    if (box.open) state.openOutcomes.add(c.id);
    else state.openOutcomes.delete(c.id);
  });
  return box;
}

// A long name on one line, cut with an ellipsis; the whole of it in the title.
const clipped = (text) => el("span", { className: "clip", title: text, text });

// -- the activity chart, from the node's own /metrics ---------------------------------

// Polls /metrics and adds a point (chart.js): the calls since the last poll,
// per second, and their mean latency.
async function refreshChart() {
  const session = state.session;
  let text;
  try {
    const response = await fetch("/metrics", {
      headers: { Authorization: `Bearer ${state.key}` },
      cache: "no-store",
      credentials: "omit",
    });
    text = await response.text();
    if (session !== state.session) return;
    if (!response.ok) {
      let detail = text;
      try {
        detail = JSON.parse(text)?.errors?.detail ?? text;
      } catch {
        // a plain-text answer is its own detail
      }
      if (response.status === 401) throw new ApiError(401, detail);
      const why = response.status === 404 ? detail || "metrics are off on this node" : `${response.status}: ${detail}`;
      state.chart = { last: null, points: [] };
      drawChart();
      show("chart-message", `No chart: ${why}.`, "error");
      return;
    }
  } catch (err) {
    if (err.status === 401) throw err;
    show("chart-message", `No chart: the core did not answer /metrics (${err.message}).`, "error");
    return;
  }
  const totals = metricTotals(text);
  const counted = totals.found ? "" : "No chart yet: the node has counted no invocation (fless_invocations_total).";
  show("chart-message", counted);
  state.chart = withPoint(state.chart, totals, Date.now() / 1000);
  drawChart();
}

function drawChart() {
  const { points } = state.chart;
  const now = Date.now() / 1000;
  plot($("chart-rate"), $("chart-rate-peak"), points.map((p) => [p.at, p.rate]), now, (v) => `${Number(v.toFixed(2))}/s`);
  plot(
    $("chart-latency"),
    $("chart-latency-peak"),
    points.filter((p) => p.latency !== null).map((p) => [p.at, p.latency]),
    now,
    (v) => millis(v),
  );
  $("chart-body").replaceChildren(
    ...points
      .slice()
      .reverse()
      .map((p) =>
        el(
          "tr",
          { "data-point": String(p.at) },
          el("td", { text: new Date(p.at * 1000).toLocaleTimeString() }),
          el("td", { text: String(p.calls) }),
          el("td", { text: p.rate.toFixed(2) }),
          el("td", { text: p.latency === null ? "—" : millis(p.latency) }),
        ),
      ),
  );
  labelCells($("chart-body").closest("table"));
  const latest = points.at(-1);
  $("chart-now").textContent = latest
    ? `Now: ${latest.rate.toFixed(2)} invocations/s, mean latency ${latest.latency === null ? "—" : millis(latest.latency)}`
    : "";
  const chartBox = $("activity");
  chartBox.dataset.points = String(points.length);
  chartBox.dataset.calls = String(points.reduce((sum, p) => sum + p.calls, 0));
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

// -- managing functions, modules, bindings and scripts -------------------------------

// Asks before a delete, in the page (a <dialog>): resolves to true for yes.
function confirmed(text, action = "Delete") {
  const dialog = $("confirm");
  if (dialog.open) return Promise.resolve(false); // one question at a time: a second click is a no
  $("confirm-text").textContent = text;
  $("confirm-yes").textContent = action;
  return new Promise((resolve) => {
    const answer = (yes) => {
      $("confirm-yes").removeEventListener("click", onYes);
      $("confirm-no").removeEventListener("click", onNo);
      dialog.removeEventListener("cancel", onCancel);
      dialog.close();
      resolve(yes);
    };
    const onYes = () => answer(true);
    const onNo = () => answer(false);
    const onCancel = (event) => {
      event.preventDefault(); // Escape: a no, said once
      answer(false);
    };
    $("confirm-yes").addEventListener("click", onYes);
    $("confirm-no").addEventListener("click", onNo);
    dialog.addEventListener("cancel", onCancel);
    dialog.showModal();
    $("confirm-no").focus();
  });
}

// Runs a change the user asked for; its failure, the API's detail included,
// shows in `messageId`, and a refused key ends the session.
async function act(messageId, work) {
  try {
    await work();
  } catch (err) {
    if (err.status === STALE) return;
    if (err.status === 401) {
      logout(`The core no longer accepts this key (401): ${err.message}.`);
      return;
    }
    show(messageId, failure(err), "error");
    if (err.status === 404) refresh(); // gone meanwhile (another tab, the CLI): show what is left
  }
}

function checkName(name, what) {
  if (!NAME.test(name)) throw new ApiError(0, `a ${what} name is letters, digits and _ only (at most 160)`);
}

async function createModule(event) {
  event.preventDefault();
  await act("manage-message", async () => {
    const name = $("module-name").value.trim();
    checkName(name, "module");
    await call("POST", "/v1/fn", { json: { module: { name } } });
    $("module-name").value = "";
    show("manage-message", `Created module ${name}.`, "ok");
    await refresh();
  });
}

async function deleteModule(module, count) {
  const what = count === 1 ? "its function" : `its ${count} functions`;
  const text = count ? `Delete module ${module} and ${what}?` : `Delete the empty module ${module}?`;
  if (!(await confirmed(text))) return;
  await act("manage-message", async () => {
    await call("DELETE", fnPath(module));
    if (state.selected?.module === module) state.selected = null;
    show("manage-message", `Deleted module ${module}.`, "ok");
    await refresh();
  });
}

async function deleteFunction() {
  const chosen = state.selected;
  if (chosen === null) return;
  const shown = `${chosen.module}/${chosen.name}`;
  if (!(await confirmed(`Delete function ${shown}? Its code, settings and bindings go with it.`))) return;
  await act("manage-message", async () => {
    await call("DELETE", fnPath(chosen.module, chosen.name));
    state.selected = null;
    show("manage-message", `Deleted function ${shown}.`, "ok");
    await refresh();
  });
}

function parseList(text, what) {
  if (!text.trim()) return null;
  let value;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(0, `${what} are not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(value)) throw new ApiError(0, `${what} must be a JSON list, like [{"type": ..., "params": {...}}]`);
  return value;
}

// The metadata an update sends: only the settings the user changed.
function changedSettings(fn) {
  const metadata = {};
  const memory = $("update-memory").value.trim();
  if (memory !== "") {
    if (!/^[0-9]+$/.test(memory) || Number(memory) < 1) throw new ApiError(0, "the memory cap is a whole number of MiB");
    if (Number(memory) !== fn.memory) metadata.memory = Number(memory);
  }
  const seconds = $("update-timeout").value.trim();
  if (seconds !== "") {
    const ms = Math.round(Number(seconds) * 1000);
    if (!Number.isFinite(ms) || ms < 1) throw new ApiError(0, "the time cap is a number of seconds, like 10 or 0.5");
    if (ms !== fn.timeout) metadata.timeout = ms;
  }
  return metadata;
}

async function updateFunction(event) {
  event.preventDefault();
  const chosen = state.selected;
  const fn = state.shown;
  if (chosen === null || fn === null) return;
  const shown = `${chosen.module}/${chosen.name}`;
  await act("update-message", async () => {
    const file = $("update-code").files[0];
    const metadata = changedSettings(fn);
    const events = parseList($("update-events").value, "the events");
    const sinks = parseList($("update-sinks").value, "the sinks");
    const form = new FormData();
    const changes = [];
    if (file) {
      form.append("code", file, file.name);
      changes.push("code");
    }
    if (Object.keys(metadata).length) {
      form.append("metadata", JSON.stringify(metadata));
      changes.push(...Object.keys(metadata));
    }
    for (const [kind, list] of [["events", events], ["sinks", sinks]]) {
      if (list === null) continue;
      if (list.length === 0) throw new ApiError(0, `an empty list keeps the ${kind}: remove them one by one above`);
      form.append(kind, JSON.stringify(list));
      changes.push(kind);
    }
    if (changes.length === 0) throw new ApiError(0, "nothing to change: pick new code or change a setting");
    show("update-message", `Updating ${shown}…`);
    const { data } = await call("PUT", fnPath(chosen.module, chosen.name), { form });
    const problems = bindingProblems(data);
    const summary = `Updated ${shown} (${changes.join(", ")}): ${mebibytes(data.memory)}, ${millis(data.timeout)}.`;
    show("update-message", problems ? `${summary} ${problems}` : summary, problems ? "error" : "ok");
    for (const id of ["update-code", "update-events", "update-sinks"]) $(id).value = "";
    $("update-memory").value = String(data.memory);
    $("update-timeout").value = String(data.timeout / 1000);
    await refresh();
  });
}

// What a create or update answer (201, 200 or 207) says of the bindings that
// did not connect: the function is kept, with the others.
function bindingProblems(data) {
  const said = [];
  for (const kind of ["events", "sinks"]) {
    if (!data?.[`${kind}_metadata`]) continue;
    (data[kind] ?? []).forEach((entry, i) => {
      if (entry?.status !== "success") said.push(`${kind.slice(0, -1)} ${i + 1} refused: ${entry?.message ?? "no reason given"}`);
    });
  }
  return said.length ? `Not bound: ${said.join("; ")}.` : "";
}

// Removes one event or sink by sending the others back: the API replaces a
// kind's whole list (null: none left). The API hides passwords and headers
// in what it shows, so a list holding one cannot be sent back from here.
async function removeBinding(kind, index) {
  const chosen = state.selected;
  const fn = state.shown;
  if (chosen === null || fn === null) return;
  const all = fn[kind] ?? [];
  const entry = all[index];
  if (!entry) return;
  const rest = all.filter((_, i) => i !== index);
  if (JSON.stringify(rest).includes("(hidden)")) {
    show(
      "bindings-message",
      `The other ${kind} hold hidden values (a password, headers): send the ${kind} you keep, in full, with the update form.`,
      "error",
    );
    return;
  }
  const label = `${kind === "events" ? "event" : "sink"} ${entry.type ?? "?"} ${where(entry)}`;
  if (!(await confirmed(`Remove the ${label} from ${chosen.module}/${chosen.name}?`, "Remove"))) return;
  await act("bindings-message", async () => {
    const form = new FormData();
    form.append(kind, rest.length ? JSON.stringify(rest) : "null");
    const { data } = await call("PUT", fnPath(chosen.module, chosen.name), { form });
    const problems = bindingProblems(data);
    show("bindings-message", problems ? `Removed the ${label}. ${problems}` : `Removed the ${label}.`, problems ? "error" : "ok");
    await refresh();
  });
}

function fillModuleChoices(names) {
  $("module-choices").replaceChildren(...names.map((name) => el("option", { value: name })));
}

async function saveScript(event) {
  event.preventDefault();
  await act("script-message", async () => {
    const name = $("script-name").value.trim();
    checkName(name, "script");
    const file = $("script-file").files[0];
    const text = file ? await file.text() : $("script-text").value;
    if (!text.trim()) throw new ApiError(0, "give the script's YAML: a file, or paste it");
    const form = new FormData();
    const replacing = state.scripts.includes(name);
    if (!replacing) form.append("name", name);
    form.append("file", new Blob([text], { type: "application/yaml" }), `${name}.yaml`);
    const path = replacing ? `/v1/scripts/app/${encodeURIComponent(name)}` : "/v1/scripts/app";
    await call(replacing ? "PUT" : "POST", path, { form });
    for (const id of ["script-name", "script-file", "script-text"]) $(id).value = "";
    show("script-message", `${replacing ? "Replaced" : "Added"} the script ${name}.`, "ok");
    await refresh();
  });
}

async function deleteScript(name) {
  const text = `Delete the APP script ${name}? Functions that name it are refused (404) until it is back.`;
  if (!(await confirmed(text))) return;
  await act("script-message", async () => {
    await call("DELETE", `/v1/scripts/app/${encodeURIComponent(name)}`);
    show("script-message", `Deleted the script ${name}.`, "ok");
    await refresh();
  });
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
  $("module-form").addEventListener("submit", createModule);
  $("update-form").addEventListener("submit", updateFunction);
  $("delete-function").addEventListener("click", deleteFunction);
  $("script-form").addEventListener("submit", saveScript);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  const saved = sessionStorage.getItem(KEY_ITEM);
  if (saved) login(saved);
  else $("key").focus();
}

start();
