//! The FunLess ABI for Rust functions on fless.
//!
//! ```ignore
//! use serde_json::{json, Value};
//!
//! fn fl_main(args: Value) -> Result<Value, String> {
//!     Ok(json!({ "echo": args }))
//! }
//!
//! fless::main!(fl_main);
//! ```
//!
//! `main!` exports `__invoke`: it fetches the JSON arguments from the host,
//! parses them, calls the function and hands its `Ok` value back as JSON, or
//! its `Err` message as the function's error (a 422 for the caller).

pub use serde_json;
use serde_json::Value;

mod imports {
    #[link(wasm_import_module = "fl_imps")]
    extern "C" {
        pub fn __get_input_data(ptr: *mut u8);
        pub fn __insert_response(ptr: *const u8, len: i32);
        pub fn __insert_error(ptr: *const u8, len: i32);
        pub fn __console_log(ptr: *const u8, len: i32);
        #[allow(clippy::too_many_arguments)]
        pub fn __http_request(
            resp: *mut u8,
            resp_len: *mut u32,
            status: *mut u16,
            method: i32,
            uri: *const u8,
            uri_len: i32,
            headers: *const u8,
            headers_len: i32,
            body: *const u8,
            body_len: i32,
        );
    }
}

/// Writes one log line to the host.
pub fn log(line: &str) {
    unsafe { imports::__console_log(line.as_ptr(), line.len() as i32) }
}

/// An outbound HTTP method, as the ABI numbers them.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    Get = 0,
    Post = 1,
    Put = 2,
    Delete = 3,
}

/// The answer to [`http_request`]: status 0 means the request failed.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One HTTP request through the host, to a host on the function's allow-list.
/// `headers` are `(key, value)` pairs; at most `max_body` bytes of the answer are kept.
pub fn http_request(
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    max_body: usize,
) -> HttpResponse {
    let header_text: Vec<String> = headers.iter().map(|(k, v)| format!("{}:{}", k, v)).collect();
    let header_text = header_text.join("\n");
    let mut resp = vec![0u8; max_body];
    let mut resp_len = max_body as u32;
    let mut status = 0u16;
    unsafe {
        imports::__http_request(
            resp.as_mut_ptr(),
            &mut resp_len,
            &mut status,
            method as i32,
            uri.as_ptr(),
            uri.len() as i32,
            header_text.as_ptr(),
            header_text.len() as i32,
            body.as_ptr(),
            body.len() as i32,
        );
    }
    resp.truncate((resp_len as usize).min(max_body));
    HttpResponse { status, body: resp }
}

/// Runs one invocation: what `main!`'s `__invoke` does. Returns 0 on success, 1 on error.
#[doc(hidden)]
pub fn invoke(len: i32, function: fn(Value) -> Result<Value, String>) -> i32 {
    let mut input = vec![0u8; len.max(0) as usize];
    unsafe { imports::__get_input_data(input.as_mut_ptr()) };
    let outcome = serde_json::from_slice::<Value>(&input)
        .map_err(|e| format!("arguments are not JSON: {}", e))
        .and_then(function)
        .and_then(|value| serde_json::to_vec(&value).map_err(|e| e.to_string()));
    match outcome {
        Ok(json) => {
            unsafe { imports::__insert_response(json.as_ptr(), json.len() as i32) };
            0
        }
        Err(message) => {
            unsafe { imports::__insert_error(message.as_ptr(), message.len() as i32) };
            1
        }
    }
}

/// Exports `__invoke` for `function: fn(serde_json::Value) -> Result<serde_json::Value, String>`.
#[macro_export]
macro_rules! main {
    ($function:path) => {
        #[no_mangle]
        pub extern "C" fn __invoke(len: i32) -> i32 {
            $crate::invoke(len, $function)
        }
    };
}
