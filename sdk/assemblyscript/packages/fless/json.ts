// JSON values for fless functions: what main(args) receives and returns.
// AssemblyScript has no JSON of its own and no union types, so a value is
// one of a small class family, read with the get* helpers of JsonObject.

export class JsonValue {
  /** Appends this value's JSON text to `out`. */
  write(out: string[]): void {
    out.push("null");
  }

  toString(): string {
    const out = new Array<string>();
    this.write(out);
    return out.join("");
  }
}

export class JsonNull extends JsonValue {}

export class JsonBool extends JsonValue {
  constructor(public value: bool) {
    super();
  }
  write(out: string[]): void {
    out.push(this.value ? "true" : "false");
  }
}

export class JsonNumber extends JsonValue {
  constructor(public value: f64) {
    super();
  }
  write(out: string[]): void {
    const v = this.value;
    if (!isFinite(v)) {
      out.push("null"); // JSON has no NaN or Infinity
    } else if (v == Math.trunc(v) && Math.abs(v) < 9007199254740992) {
      out.push((<i64>v).toString()); // 3, not 3.0
    } else {
      out.push(v.toString());
    }
  }
}

export class JsonString extends JsonValue {
  constructor(public value: string) {
    super();
  }
  write(out: string[]): void {
    out.push(quote(this.value));
  }
}

export class JsonArray extends JsonValue {
  items: JsonValue[] = [];

  push(item: JsonValue): JsonArray {
    this.items.push(item);
    return this;
  }
  get length(): i32 {
    return this.items.length;
  }
  write(out: string[]): void {
    out.push("[");
    for (let i = 0; i < this.items.length; i++) {
      if (i) out.push(",");
      this.items[i].write(out);
    }
    out.push("]");
  }
}

export class JsonObject extends JsonValue {
  keys: string[] = [];
  private values: Map<string, JsonValue> = new Map();

  /** Sets a member (keeps the first position of a key set twice). */
  set(key: string, value: JsonValue): JsonObject {
    if (!this.values.has(key)) this.keys.push(key);
    this.values.set(key, value);
    return this;
  }
  has(key: string): bool {
    return this.values.has(key);
  }
  /** The member called `key`, or null when there is none. */
  get(key: string): JsonValue | null {
    return this.values.has(key) ? this.values.get(key) : null;
  }
  getString(key: string, fallback: string = ""): string {
    const v = this.get(key);
    return v instanceof JsonString ? (<JsonString>v).value : fallback;
  }
  getNumber(key: string, fallback: f64 = 0): f64 {
    const v = this.get(key);
    return v instanceof JsonNumber ? (<JsonNumber>v).value : fallback;
  }
  getBool(key: string, fallback: bool = false): bool {
    const v = this.get(key);
    return v instanceof JsonBool ? (<JsonBool>v).value : fallback;
  }
  getArray(key: string): JsonArray | null {
    const v = this.get(key);
    return v instanceof JsonArray ? <JsonArray>v : null;
  }
  getObject(key: string): JsonObject | null {
    const v = this.get(key);
    return v instanceof JsonObject ? <JsonObject>v : null;
  }
  write(out: string[]): void {
    out.push("{");
    for (let i = 0; i < this.keys.length; i++) {
      if (i) out.push(",");
      const key = this.keys[i];
      out.push(quote(key));
      out.push(":");
      this.values.get(key).write(out);
    }
    out.push("}");
  }
}

export function quote(s: string): string {
  const out = new Array<string>();
  out.push('"');
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out.push(s.substring(start, i));
    if (c == 0x22) out.push('\\"');
    else if (c == 0x5c) out.push("\\\\");
    else if (c == 0x0a) out.push("\\n");
    else if (c == 0x0d) out.push("\\r");
    else if (c == 0x09) out.push("\\t");
    else out.push("\\u00" + (c < 0x10 ? "0" : "") + c.toString(16));
    start = i + 1;
  }
  out.push(s.substring(start));
  out.push('"');
  return out.join("");
}

/** Parses JSON text; throws an Error naming the position of a mistake. */
export function parseJson(text: string): JsonValue {
  const parser = new Parser(text);
  parser.space();
  const value = parser.value();
  parser.space();
  if (parser.pos < text.length) parser.fail("unexpected text after the value");
  return value;
}

class Parser {
  pos: i32 = 0;
  constructor(public text: string) {}

  fail(what: string): void {
    throw new Error(`invalid JSON at offset ${this.pos}: ${what}`);
  }

  space(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      this.pos++;
    }
  }

  literal(word: string): void {
    if (this.text.substr(this.pos, word.length) != word) this.fail("unknown literal");
    this.pos += word.length;
  }

  value(): JsonValue {
    if (this.pos >= this.text.length) this.fail("unexpected end");
    const c = this.text.charCodeAt(this.pos);
    if (c == 0x7b) return this.object();
    if (c == 0x5b) return this.array();
    if (c == 0x22) return new JsonString(this.string());
    if (c == 0x74) {
      this.literal("true");
      return new JsonBool(true);
    }
    if (c == 0x66) {
      this.literal("false");
      return new JsonBool(false);
    }
    if (c == 0x6e) {
      this.literal("null");
      return new JsonNull();
    }
    return this.number();
  }

  object(): JsonObject {
    const obj = new JsonObject();
    this.pos++; // {
    this.space();
    if (this.text.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return obj;
    }
    while (true) {
      this.space();
      if (this.text.charCodeAt(this.pos) != 0x22) this.fail("expected a member name");
      const key = this.string();
      this.space();
      if (this.text.charCodeAt(this.pos) != 0x3a) this.fail("expected ':'");
      this.pos++;
      this.space();
      obj.set(key, this.value());
      this.space();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x7d) return obj;
      if (c != 0x2c) this.fail("expected ',' or '}'");
    }
  }

  array(): JsonArray {
    const arr = new JsonArray();
    this.pos++; // [
    this.space();
    if (this.text.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return arr;
    }
    while (true) {
      this.space();
      arr.push(this.value());
      this.space();
      const c = this.text.charCodeAt(this.pos++);
      if (c == 0x5d) return arr;
      if (c != 0x2c) this.fail("expected ',' or ']'");
    }
  }

  string(): string {
    const out = new Array<string>();
    this.pos++; // opening quote
    let start = this.pos;
    while (true) {
      if (this.pos >= this.text.length) this.fail("unterminated string");
      const c = this.text.charCodeAt(this.pos);
      if (c == 0x22) break;
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out.push(this.text.substring(start, this.pos));
      const e = this.text.charCodeAt(this.pos + 1);
      this.pos += 2;
      if (e == 0x6e) out.push("\n");
      else if (e == 0x74) out.push("\t");
      else if (e == 0x72) out.push("\r");
      else if (e == 0x62) out.push("\b");
      else if (e == 0x66) out.push("\f");
      else if (e == 0x75) {
        const hex = this.text.substr(this.pos, 4);
        const code = I32.parseInt(hex, 16);
        if (hex.length != 4 || isNaN(<f64>code)) this.fail("bad \\u escape");
        out.push(String.fromCharCode(code));
        this.pos += 4;
      } else out.push(String.fromCharCode(e)); // \" \\ \/
      start = this.pos;
    }
    out.push(this.text.substring(start, this.pos));
    this.pos++; // closing quote
    return out.join("");
  }

  number(): JsonNumber {
    const start = this.pos;
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      // digits, sign, decimal point, exponent
      if ((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45) {
        this.pos++;
      } else break;
    }
    if (start == this.pos) this.fail("unexpected character");
    const v = parseFloat(this.text.substring(start, this.pos));
    if (isNaN(v)) this.fail("bad number");
    return new JsonNumber(v);
  }
}
