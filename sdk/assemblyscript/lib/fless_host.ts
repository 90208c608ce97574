// The host side of AssemblyScript's runtime on fless, passed to asc with
// --lib (its exports become globals) and selected with --use: abort, trace,
// seed and console go to the FunLess ABI and WASI, so a module imports
// nothing from "env", which fless would refuse.

@external("fl_imps", "__insert_error")
declare function fl_insert_error(ptr: usize, len: i32): void;

@external("fl_imps", "__console_log")
declare function fl_console_log(ptr: usize, len: i32): void;

@external("wasi_snapshot_preview1", "proc_exit")
declare function wasi_proc_exit(code: i32): void;

@external("wasi_snapshot_preview1", "random_get")
declare function wasi_random_get(buf: usize, len: usize): i32;

function fless_log(message: string): void {
  const utf8 = String.UTF8.encode(message);
  fl_console_log(changetype<usize>(utf8), utf8.byteLength);
}

// `throw new Error(message)` and failed assertions end here: the message is
// the function's error (HTTP 422), and exiting with 1 tells the host so.
export function fless_abort(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  const text = message !== null ? message : "abort";
  const utf8 = String.UTF8.encode(text);
  fl_insert_error(changetype<usize>(utf8), utf8.byteLength);
  if (fileName !== null) fless_log(`${text} at ${fileName}:${line}:${column}`);
  wasi_proc_exit(1);
  unreachable();
}

export function fless_trace(
  message: string,
  n: i32 = 0,
  a0: f64 = 0,
  a1: f64 = 0,
  a2: f64 = 0,
  a3: f64 = 0,
  a4: f64 = 0,
): void {
  const values = [a0, a1, a2, a3, a4];
  let line = "trace: " + message;
  for (let i = 0; i < n && i < 5; i++) line += (i ? ", " : " ") + values[i].toString();
  fless_log(line);
}

export function fless_seed(): f64 {
  const buf = new ArrayBuffer(8);
  wasi_random_get(changetype<usize>(buf), 8);
  return <f64>load<u64>(changetype<usize>(buf));
}

// console.log and its kin write one line each to the function's log.
export namespace fless_console {
  export function log(message: string = ""): void {
    fless_log(message);
  }
  export function info(message: string = ""): void {
    fless_log(message);
  }
  export function warn(message: string = ""): void {
    fless_log(message);
  }
  export function error(message: string = ""): void {
    fless_log(message);
  }
  export function debug(message: string = ""): void {
    fless_log(message);
  }
}
