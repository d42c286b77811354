//! The key schema for JavaScript: the Node tests classify and name the keys
//! they find in Redis with these instead of spelling the suffixes again.

use rollcall_core::Schema;
use wasm_bindgen::prelude::*;

/// The kind of `key` under `prefix` (a [`rollcall_core::KeyKind`]) as JSON, `{"kind": "live" | "dead" |
/// "versions" | "nodes" | "clock" | "counts"}`, `{"kind": "users" |
/// "members", "scope_id"}`, `{"kind": "user_scopes", "user"}`, `{"kind":
/// "own", "incarnation"}` or `{"kind":
/// "kept_reply", "lane": "w" | "r", "incarnation"}`, `{"kind": "feed" |
/// "seen"}`; `undefined` for a key
/// of another prefix or no key of the schema.
#[wasm_bindgen(js_name = parseKey)]
pub fn parse_key(prefix: &str, key: &str) -> Option<String> {
    let kind = Schema::new(prefix).parse_key(key)?;
    Some(serde_json::to_string(&kind).expect("a key kind serializes"))
}

/// The keys of `prefix` that are one per prefix, as JSON: `{"live",
/// "dead", "versions", "nodes", "clock", "counts", "feed", "seen"}` (the
/// last two outlive the nodes).
#[wasm_bindgen(js_name = schemaKeys)]
pub fn schema_keys(prefix: &str) -> String {
    #[derive(serde::Serialize)]
    struct Keys {
        live: String,
        dead: String,
        versions: String,
        nodes: String,
        clock: String,
        counts: String,
        feed: String,
        seen: String,
    }
    let s = Schema::new(prefix);
    let keys = Keys {
        live: s.live(),
        dead: s.dead(),
        versions: s.versions(),
        nodes: s.nodes(),
        clock: s.clock(),
        counts: s.counts(),
        feed: s.feed(),
        seen: s.seen(),
    };
    serde_json::to_string(&keys).expect("keys serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_to_their_json_kind() {
        let s = Schema::new("p");
        assert_eq!(parse_key("p", &s.live()).unwrap(), r#"{"kind":"live"}"#);
        assert_eq!(
            parse_key("p", &s.own("n/1")).unwrap(),
            r#"{"kind":"own","incarnation":"n/1"}"#
        );
        assert_eq!(
            parse_key("p", "{p}:o:r:n/1").unwrap(),
            r#"{"kind":"kept_reply","lane":"r","incarnation":"n/1"}"#
        );
        assert_eq!(
            parse_key("p", "{p}:u:g").unwrap(),
            r#"{"kind":"users","scope_id":"g"}"#
        );
        assert_eq!(parse_key("p", "{p}:feed").unwrap(), r#"{"kind":"feed"}"#);
        assert_eq!(parse_key("p", "{p}:seen").unwrap(), r#"{"kind":"seen"}"#);
        assert_eq!(parse_key("p", "{q}:live"), None);
        assert_eq!(parse_key("p", "{p}:nope"), None);
    }

    #[test]
    fn the_fixed_keys_are_the_schemas() {
        let keys: serde_json::Value = serde_json::from_str(&schema_keys("p")).unwrap();
        assert_eq!(keys["live"], "{p}:live");
        assert_eq!(keys["counts"], "{p}:count");
        assert_eq!(keys["versions"], "{p}:ver");
        assert_eq!(keys["feed"], "{p}:feed");
        assert_eq!(keys["seen"], "{p}:seen");
        assert_eq!(keys.as_object().unwrap().len(), 8);
    }
}
