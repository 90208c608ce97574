// The fless SDK for AssemblyScript: JSON values, outbound HTTP, and the
// FunLess ABI entry point that sdk/assemblyscript/build.sh wires to the
// function's main(args).

import { JsonObject, JsonValue, parseJson } from "./json";

export {
  JsonArray,
  JsonBool,
  JsonNull,
  JsonNumber,
  JsonObject,
  JsonString,
  JsonValue,
  parseJson,
  quote,
} from "./json";
export { HttpResponse, httpRequest } from "./http";

@external("fl_imps", "__get_input_data")
declare function fl_get_input_data(ptr: usize): void;

@external("fl_imps", "__insert_response")
declare function fl_insert_response(ptr: usize, len: i32): void;

/** Runs one invocation: decodes the args, calls main, sends its result. */
export function invoke(length: i32, main: (args: JsonObject) => JsonValue): i32 {
  const input = new ArrayBuffer(length);
  fl_get_input_data(changetype<usize>(input));
  const args = parseJson(String.UTF8.decode(input));
  if (!(args instanceof JsonObject)) throw new Error("the args are not a JSON object");
  const output = String.UTF8.encode(main(<JsonObject>args).toString());
  fl_insert_response(changetype<usize>(output), output.byteLength);
  return 0;
}
