// Outbound HTTP through the host's __http_request, to hosts on the
// function's allow-list (any other host ends the function).

@external("fl_imps", "__http_request")
declare function fl_http_request(
  resp: usize,
  respLen: usize,
  status: usize,
  method: i32,
  uri: usize,
  uriLen: i32,
  headers: usize,
  headersLen: i32,
  body: usize,
  bodyLen: i32,
): void;

// The host's own cap on one response body (Limits.http_max_response_bytes).
const RESPONSE_CAPACITY: u32 = 4 * 1024 * 1024;

export class HttpResponse {
  constructor(public status: i32, public body: string) {}
  get ok(): bool {
    return this.status >= 200 && this.status < 300;
  }
}

/**
 * One request: method GET, POST, PUT or DELETE; headers as "Key:Value"
 * strings. Throws when the request failed (no status).
 */
export function httpRequest(
  method: string,
  url: string,
  body: string = "",
  headers: string[] = [],
): HttpResponse {
  const code = ["GET", "POST", "PUT", "DELETE"].indexOf(method.toUpperCase());
  if (code < 0) throw new Error(`httpRequest: method ${method} is not supported`);
  const uri = String.UTF8.encode(url);
  const head = String.UTF8.encode(headers.join("\n"));
  const payload = String.UTF8.encode(body);
  const resp = new ArrayBuffer(RESPONSE_CAPACITY);
  const lengths = new ArrayBuffer(8); // u32 body length, u16 status
  store<u32>(changetype<usize>(lengths), RESPONSE_CAPACITY);
  fl_http_request(
    changetype<usize>(resp),
    changetype<usize>(lengths),
    changetype<usize>(lengths) + 4,
    code,
    changetype<usize>(uri),
    uri.byteLength,
    changetype<usize>(head),
    head.byteLength,
    changetype<usize>(payload),
    payload.byteLength,
  );
  const status = <i32>load<u16>(changetype<usize>(lengths) + 4);
  if (status == 0) throw new Error(`httpRequest ${url}: the request failed`);
  const length = load<u32>(changetype<usize>(lengths));
  return new HttpResponse(status, String.UTF8.decode(resp.slice(0, <i32>length)));
}
