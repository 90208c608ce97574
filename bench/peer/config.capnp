# The benchmark's peer: Cloudflare workerd serving the FunLess-ABI hello.
#
#   workerd serve config.capnp --socket-addr http=127.0.0.1:PORT
#
# The harness copies this file, worker.js and the built hello.wasm into one
# directory and starts workerd there; the address on the command line
# replaces the one below, so it always listens on a free loopback port.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "hello", worker = .helloWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:8080", http = (), service = "hello") ],
);

const helloWorker :Workerd.Worker = (
  modules = [
    (name = "worker", esModule = embed "worker.js"),
    (name = "hello.wasm", wasm = embed "hello.wasm"),
  ],
  compatibilityDate = "2025-01-01",
);
