// A fless function: main receives the invocation's JSON args and returns its
// JSON result. console.log goes to the function's log; httpRequest reaches
// hosts on its allow-list; `throw new Error(message)` is the function's error.
import { JsonObject, JsonString, JsonValue } from "fless";

export function main(args: JsonObject): JsonValue {
  const name = args.getString("name", "world");
  return new JsonObject().set("message", new JsonString(`Hello, ${name}!`));
}
