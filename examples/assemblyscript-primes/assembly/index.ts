// Counts the primes up to `limit` with a sieve of Eratosthenes and returns
// the count and the largest few: CPU-bound work that AssemblyScript compiles
// to plain Wasm loops.
//
//   {"limit": 1000000, "largest": 3}
//   -> {"limit": 1000000, "count": 78498, "largest": [999961, 999979, 999983]}
import { JsonArray, JsonNumber, JsonObject, JsonValue } from "fless";

const MAX_LIMIT: f64 = 50_000_000;

export function main(args: JsonObject): JsonValue {
  const limit = args.getNumber("limit", 100);
  const largest = <i32>args.getNumber("largest", 5);
  if (limit < 2 || limit > MAX_LIMIT || limit != Math.floor(limit)) {
    throw new Error(`limit must be a whole number from 2 to ${<i64>MAX_LIMIT}`);
  }
  const n = <i32>limit;
  // composite[i] != 0 marks i as not prime
  const composite = new Uint8Array(n + 1);
  let count = 0;
  for (let i = 2; i <= n; i++) {
    if (composite[i]) continue;
    count++;
    for (let j = <i64>i * i; j <= n; j += i) composite[<i32>j] = 1;
  }
  const top = new Array<i32>();
  for (let i = n; i >= 2 && top.length < largest; i--) {
    if (!composite[i]) top.unshift(i);
  }
  const list = new JsonArray();
  for (let i = 0; i < top.length; i++) list.push(new JsonNumber(top[i]));
  console.log(`sieved ${n} numbers`);
  return new JsonObject()
    .set("limit", new JsonNumber(n))
    .set("count", new JsonNumber(count))
    .set("largest", list);
}
