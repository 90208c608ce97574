//! rust_hello: a fless function in Rust. {"name": "Ada"} -> {"message": "Hello, Ada!"}
use serde_json::{json, Value};

fn fl_main(args: Value) -> Result<Value, String> {
    let name = match args.get("name") {
        None => "world",
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err("name must be a string".to_string()),
    };
    Ok(json!({ "message": format!("Hello, {}!", name) }))
}

fless::main!(fl_main);
