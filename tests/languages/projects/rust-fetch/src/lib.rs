//! POSTs args.body to args.url with an X-Test header; answers {"status", "body"}.
use serde_json::{json, Value};

fn fl_main(args: Value) -> Result<Value, String> {
    let url = args["url"].as_str().ok_or("no url")?;
    let body = args["body"].as_str().ok_or("no body")?;
    let resp = fless::http_request(fless::Method::Post, url, &[("X-Test", "yes")], body.as_bytes(), 4096);
    Ok(json!({ "status": resp.status, "body": String::from_utf8_lossy(&resp.body) }))
}

fless::main!(fl_main);
