// What a fless JavaScript function finds in its global scope besides the
// language itself: console (to the function's log) and fetch (through the
// host's __http_request, to hosts on the function's allow-list).
// Compiled to bytecode with the engine; runs before the user's module.
(function (log, http) {
  "use strict";
  delete globalThis.__fless_log;
  delete globalThis.__fless_http;

  function show(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return value.stack || String(value);
    try {
      const json = JSON.stringify(value);
      return json === undefined ? String(value) : json;
    } catch {
      return String(value);
    }
  }
  const line = (...values) => log(values.map(show).join(" "));
  globalThis.console = { log: line, info: line, warn: line, error: line, debug: line };

  // The methods the FunLess ABI can send, by their number in __http_request.
  const METHODS = { GET: 0, POST: 1, PUT: 2, DELETE: 3 };

  class Response {
    constructor(url, status, body) {
      this.url = url;
      this.status = status;
      this.ok = status >= 200 && status < 300;
      this.body = body;
    }
    async text() {
      return this.body;
    }
    async json() {
      return JSON.parse(this.body);
    }
  }

  // fetch(url, {method, headers, body}) as in browsers, for text bodies. The
  // request runs synchronously in the host; the promise is already settled.
  globalThis.fetch = async function fetch(url, init = {}) {
    const method = String(init.method || "GET").toUpperCase();
    if (!(method in METHODS)) {
      throw new TypeError(`fetch: method ${method} is not supported (GET, POST, PUT, DELETE)`);
    }
    const headers = Object.entries(init.headers || {})
      .map(([key, value]) => `${key}:${value}`)
      .join("\n");
    const body = init.body === undefined || init.body === null ? "" : String(init.body);
    const [status, text] = http(METHODS[method], String(url), headers, body);
    if (status === 0) throw new TypeError(`fetch ${url}: the request failed`);
    return new Response(String(url), status, text);
  };
  globalThis.Response = Response;
})(globalThis.__fless_log, globalThis.__fless_http);
