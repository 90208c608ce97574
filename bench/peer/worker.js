// The benchmark's peer: the FunLess-ABI hello run by workerd the way fless
// runs it, in a fresh WebAssembly.Instance per request with the fl_imps host
// functions, answering FunLess's {"data": ...} (or {"errors": ...}).
import hello from "./hello.wasm";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ENOSYS = 52;

// The WASI preview 1 functions the module imports, as stubs: no files, no
// environment, no clock, as fless gives a function (zig's reactor build of
// the hello imports none, but a libc may pull in fd_write or proc_exit).
function wasiStubs(memory) {
  const stubs = {
    fd_write(fd, iovs, count, written) {
      const view = new DataView(memory().buffer);
      let n = 0;
      for (let i = 0; i < count; i++) n += view.getUint32(iovs + i * 8 + 4, true);
      view.setUint32(written, n, true);
      return 0;
    },
    environ_sizes_get(count, size) {
      const view = new DataView(memory().buffer);
      view.setUint32(count, 0, true);
      view.setUint32(size, 0, true);
      return 0;
    },
    environ_get() { return 0; },
    args_sizes_get(count, size) { return stubs.environ_sizes_get(count, size); },
    args_get() { return 0; },
    proc_exit(code) { throw new Error(`function exited with code ${code}`); },
  };
  const imports = {};
  for (const { module, name } of WebAssembly.Module.imports(hello)) {
    if (module === "wasi_snapshot_preview1") imports[name] = stubs[name] ?? (() => ENOSYS);
  }
  return imports;
}

function errors(status, detail) {
  return Response.json({ errors: { detail } }, { status });
}

export default {
  async fetch(request) {
    let body;
    try {
      body = await request.json();
    } catch {
      return errors(400, "the body must be JSON");
    }
    const args = body?.args ?? {};
    if (typeof args !== "object" || Array.isArray(args)) {
      return errors(400, "args must be a JSON object");
    }
    const input = encoder.encode(JSON.stringify(args));
    let instance = null;
    let output = null;
    let failure = null;
    const bytes = (ptr, len) => new Uint8Array(instance.exports.memory.buffer, ptr, len);
    instance = new WebAssembly.Instance(hello, {
      fl_imps: {
        __get_input_data(ptr) { bytes(ptr, input.length).set(input); },
        __insert_response(ptr, len) { output = decoder.decode(bytes(ptr, len)); },
        __insert_error(ptr, len) { failure = decoder.decode(bytes(ptr, len)); },
        __console_log() {},
        __http_request() { throw new Error("no outbound HTTP in the benchmark"); },
      },
      wasi_snapshot_preview1: wasiStubs(() => instance.exports.memory),
    });
    if (instance.exports._initialize) instance.exports._initialize();
    const status = instance.exports.__invoke(input.length);
    if (status !== 0 || output === null) return errors(422, failure ?? "no response");
    return new Response(`{"data":${output}}`, {
      headers: { "content-type": "application/json" },
    });
  },
};
