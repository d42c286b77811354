//! Redis replies in as JS values: what the app's client resolved (node-redis
//! or ioredis, RESP2 or RESP3), read with js-sys straight into the core's
//! [`Reply`], with no JSON in between (`replyValue`). The rules are those of
//! `normalise` in `pkg/lib/store.js`, for every shape a Redis client
//! resolves; the Node test `boundary.test.js` holds the two paths to one
//! answer. One boundary call per value read, against one JSON text for the
//! whole reply: measured as fast within the noise or a few per cent slower
//! (BENCHMARKS.md 14), so the package sends JSON and this is the other path.

use js_sys::{Array, Function, Map, Object, Reflect, Set, Uint8Array};
use rollcall_core::Reply;
use wasm_bindgen::{JsCast, JsValue};

/// The reply in the core's form.
pub fn reply_of(v: &JsValue) -> Reply {
    if v.is_null() || v.is_undefined() {
        return Reply::Nil;
    }
    if let Some(n) = v.as_f64() {
        return integer(n);
    }
    if let Some(s) = v.as_string() {
        return Reply::Str(s);
    }
    if let Some(b) = v.as_bool() {
        return if b { Reply::Int(1) } else { Reply::Nil };
    }
    if v.is_bigint() {
        return i64::try_from(v.clone())
            .map(Reply::Int)
            .unwrap_or_else(|_| Reply::error("rollcall: a reply integer out of range"));
    }
    if Array::is_array(v) {
        let items: &Array = v.unchecked_ref();
        return Reply::Array(items.iter().map(|x| reply_of(&x)).collect());
    }
    if let Some(bytes) = v.dyn_ref::<Uint8Array>() {
        return Reply::Str(String::from_utf8_lossy(&bytes.to_vec()).into_owned());
    }
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        return Reply::error(String::from(e.message()));
    }
    if let Some(set) = v.dyn_ref::<Set>() {
        let mut items = Vec::with_capacity(set.size() as usize);
        set.for_each(&mut |x, _, _| items.push(reply_of(&x)));
        return Reply::Array(items);
    }
    if let Some(map) = v.dyn_ref::<Map>() {
        let mut flat = Vec::with_capacity(2 * map.size() as usize);
        map.for_each(&mut |x, k| {
            flat.push(reply_of(&k));
            flat.push(reply_of(&x));
        });
        return Reply::Array(flat);
    }
    if v.is_object() {
        let to_string =
            Reflect::get(v, &JsValue::from_str("toString")).unwrap_or(JsValue::UNDEFINED);
        if to_string.is_function() && to_string != object_to_string() {
            // A verbatim string or a big number wrapper.
            return Reply::Str(text(v, &to_string));
        }
        let obj: &Object = v.unchecked_ref();
        let keys = Object::keys(obj);
        let mut flat = Vec::with_capacity(2 * keys.length() as usize);
        for key in keys.iter() {
            let x = Reflect::get(v, &key).unwrap_or(JsValue::UNDEFINED);
            flat.push(reply_of(&key));
            flat.push(reply_of(&x));
        }
        return Reply::Array(flat);
    }
    let to_string = Reflect::get(v, &JsValue::from_str("toString")).unwrap_or(JsValue::UNDEFINED);
    Reply::Str(text(v, &to_string))
}

/// `Math.trunc` of a JS number, as `JSON.stringify` then gives it to the
/// core: NaN and the infinities are `null`.
fn integer(n: f64) -> Reply {
    const LIMIT: f64 = 9_223_372_036_854_775_807.0;
    if !n.is_finite() {
        Reply::Nil
    } else if n.abs() < LIMIT {
        Reply::Int(n.trunc() as i64)
    } else {
        Reply::error(format!("rollcall: reply number {n} is out of range"))
    }
}

/// `Object.prototype.toString`: an object with only that one is a map.
fn object_to_string() -> JsValue {
    Reflect::get(&Object::new(), &JsValue::from_str("toString")).unwrap_or(JsValue::UNDEFINED)
}

/// `String(v)` through its own `toString`.
fn text(v: &JsValue, to_string: &JsValue) -> String {
    to_string
        .dyn_ref::<Function>()
        .and_then(|f| f.call0(v).ok())
        .and_then(|s| s.as_string())
        .unwrap_or_default()
}
