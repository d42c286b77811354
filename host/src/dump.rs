//! A canonical dump of a real Redis keyspace under one prefix, in the same
//! shape as the core model's [`Keyspace::dump`](rollcall_core::Keyspace::dump),
//! so `rollcall_core::invariants::check` and the differential tests work on
//! both.

use redis::Value;
use rollcall_core::Schema;
use rollcall_core::model::{DumpEntry, DumpValue};

use crate::error::{Error, classify};
use crate::store::RedisStore;

/// Reads the given keys in one script call, so the values are one
/// consistent snapshot. Replies `{key, type, {contents...}}` per key that
/// exists.
const DUMP_LUA: &str = r#"
local out = {}
for _, k in ipairs(KEYS) do
  local t = redis.call('TYPE', k)['ok']
  if t == 'hash' then
    out[#out + 1] = { k, t, redis.call('HGETALL', k) }
  elseif t == 'zset' then
    out[#out + 1] = { k, t, redis.call('ZRANGE', k, 0, -1, 'WITHSCORES') }
  elseif t == 'string' then
    out[#out + 1] = { k, t, { redis.call('GET', k) } }
  elseif t == 'stream' then
    out[#out + 1] = { k, t, redis.call('XRANGE', k, '-', '+') }
  elseif t ~= 'none' then
    out[#out + 1] = { k, t, {} }
  end
end
return out
"#;

/// Escapes glob characters, for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every key of the schema's prefix, sorted.
pub async fn keys(store: &RedisStore, schema: &Schema) -> Result<Vec<String>, Error> {
    let mut conn = store.connection();
    let pattern = format!("{}*", glob_escape(schema.base()));
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .map_err(|e| classify(&e, store.url()))?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Dumps every key of the prefix. Keys are listed with SCAN, then read in
/// one script call (in slices of 5,000 keys when there are more); a key
/// written between the two steps may be missed, so dump a quiet keyspace
/// when exactness matters. Keys of a type rollcall never writes come back
/// as a string `<type>` so that the invariant check reports them.
pub async fn dump(store: &RedisStore, schema: &Schema) -> Result<Vec<DumpEntry>, Error> {
    let keys = keys(store, schema).await?;
    let mut conn = store.connection();
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(5_000) {
        let reply: Value = redis::cmd("EVAL")
            .arg(DUMP_LUA)
            .arg(chunk.len())
            .arg(chunk)
            .query_async(&mut conn)
            .await
            .map_err(|e| classify(&e, store.url()))?;
        parse_dump(reply, &mut out)?;
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn text(v: &Value) -> Result<String, Error> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|_| Error::Store {
            message: "a key or value that is not UTF-8".into(),
        }),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(Error::Store {
            message: format!("unexpected dump item {other:?}"),
        }),
    }
}

fn items(v: Value) -> Result<Vec<Value>, Error> {
    match v {
        Value::Array(items) | Value::Set(items) => Ok(items),
        Value::Map(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Value::Nil => Ok(Vec::new()),
        other => Err(Error::Store {
            message: format!("unexpected dump reply {other:?}"),
        }),
    }
}

fn parse_dump(reply: Value, out: &mut Vec<DumpEntry>) -> Result<(), Error> {
    for entry in items(reply)? {
        let mut parts = items(entry)?.into_iter();
        let (Some(key), Some(kind), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Store {
                message: "a dump entry with fewer than 3 parts".into(),
            });
        };
        let key = text(&key)?;
        let kind = text(&kind)?;
        let body = items(body)?;
        let value = match kind.as_str() {
            "hash" => {
                let mut fields = Vec::with_capacity(body.len() / 2);
                for pair in body.chunks(2) {
                    if let [f, v] = pair {
                        fields.push((text(f)?, text(v)?));
                    }
                }
                fields.sort();
                DumpValue::Hash(fields)
            }
            "zset" => {
                let mut members = Vec::with_capacity(body.len() / 2);
                for pair in body.chunks(2) {
                    if let [m, s] = pair {
                        let s = text(s)?;
                        let score = s
                            .parse::<i64>()
                            .or_else(|_| s.parse::<f64>().map(|f| f as i64))
                            .map_err(|_| Error::Store {
                                message: format!("zset {key} has a non-numeric score {s:?}"),
                            })?;
                        members.push((text(m)?, score));
                    }
                }
                DumpValue::Zset(members)
            }
            // Each entry is [id, [field, value, ...]]; the ids are left out.
            "stream" => {
                let mut entries = Vec::with_capacity(body.len());
                for entry in body {
                    let mut parts = items(entry)?.into_iter().skip(1);
                    let flat = items(parts.next().unwrap_or(Value::Nil))?;
                    let mut fields = Vec::with_capacity(flat.len() / 2);
                    for pair in flat.chunks(2) {
                        if let [f, v] = pair {
                            fields.push((text(f)?, text(v)?));
                        }
                    }
                    entries.push(fields);
                }
                DumpValue::Stream(entries)
            }
            "string" => DumpValue::String(match body.first() {
                Some(v) => text(v)?,
                None => String::new(),
            }),
            other => DumpValue::String(format!("<{other}>")),
        };
        out.push(DumpEntry { key, value });
    }
    Ok(())
}

/// Redis' own clock, in milliseconds (what the scripts call now).
pub async fn redis_time_ms(store: &RedisStore) -> Result<i64, Error> {
    let mut conn = store.connection();
    let (secs, micros): (i64, i64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .map_err(|e| classify(&e, store.url()))?;
    Ok(secs * 1000 + micros / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("{a*b}:"), "{a\\*b}:");
        assert_eq!(glob_escape("[x]?"), "\\[x\\]\\?");
    }
}
