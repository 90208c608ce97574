//! rust-orders: a JSON transformation, from order lines to a report per customer.
//!
//! In:  {"orders": [{"customer": "ada", "item": "pen", "qty": 3, "price": 1.5}, ...],
//!       "currency": "EUR"}                       (currency optional)
//! Out: {"currency": "EUR", "total": 12.0, "customers": [
//!         {"customer": "ada", "orders": 2, "items": 5, "total": 7.5,
//!          "top_item": "pen"}, ...]}
//! Customers come by total, highest first (then by name); amounts are in
//! cents internally so totals add up exactly.
use std::collections::BTreeMap;

use serde_json::{json, Value};

#[derive(Default)]
struct Customer {
    orders: u64,
    items: u64,
    cents: i64,
    by_item: BTreeMap<String, u64>,
}

fn field<'a>(order: &'a Value, index: usize, name: &str) -> Result<&'a Value, String> {
    order.get(name).ok_or_else(|| format!("orders[{}] has no {}", index, name))
}

fn fl_main(args: Value) -> Result<Value, String> {
    let orders = args
        .get("orders")
        .and_then(Value::as_array)
        .ok_or("orders must be an array of order lines")?;
    let currency = args.get("currency").and_then(Value::as_str).unwrap_or("EUR");
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    for (index, order) in orders.iter().enumerate() {
        let name = field(order, index, "customer")?
            .as_str()
            .ok_or_else(|| format!("orders[{}].customer must be a string", index))?;
        let item = field(order, index, "item")?
            .as_str()
            .ok_or_else(|| format!("orders[{}].item must be a string", index))?;
        let qty = field(order, index, "qty")?
            .as_u64()
            .ok_or_else(|| format!("orders[{}].qty must be a whole number", index))?;
        let price = field(order, index, "price")?
            .as_f64()
            .filter(|p| *p >= 0.0)
            .ok_or_else(|| format!("orders[{}].price must be a number >= 0", index))?;
        let customer = customers.entry(name.to_string()).or_default();
        customer.orders += 1;
        customer.items += qty;
        customer.cents += (price * 100.0).round() as i64 * qty as i64;
        *customer.by_item.entry(item.to_string()).or_default() += qty;
    }
    let mut report: Vec<(String, Customer)> = customers.into_iter().collect();
    report.sort_by(|a, b| b.1.cents.cmp(&a.1.cents).then_with(|| a.0.cmp(&b.0)));
    let total: i64 = report.iter().map(|(_, c)| c.cents).sum();
    let rows: Vec<Value> = report
        .iter()
        .map(|(name, c)| {
            // The most bought item; the first by name on a tie.
            let top = c.by_item.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)));
            json!({
                "customer": name,
                "orders": c.orders,
                "items": c.items,
                "total": c.cents as f64 / 100.0,
                "top_item": top.map(|(item, _)| item.as_str()),
            })
        })
        .collect();
    Ok(json!({ "currency": currency, "total": total as f64 / 100.0, "customers": rows }))
}

fless::main!(fl_main);
