//! Maps redis-rs values (RESP2 and RESP3) onto the core's [`Reply`].

use redis::Value;
use rollcall_core::Reply;

/// One Redis value as the core sees it. Strings must be UTF-8 (every key,
/// field and id rollcall writes is); a reply that is not becomes an error.
pub fn to_reply(value: Value) -> Reply {
    match value {
        Value::Nil => Reply::Nil,
        Value::Int(i) => Reply::Int(i),
        Value::BulkString(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Reply::Str(s),
            Err(e) => Reply::error(format!(
                "rollcall: Redis returned a string that is not UTF-8 ({} bytes, invalid at byte {})",
                e.as_bytes().len(),
                e.utf8_error().valid_up_to()
            )),
        },
        Value::SimpleString(s) => Reply::Str(s),
        Value::Okay => Reply::Str("OK".to_owned()),
        Value::VerbatimString { text, .. } => Reply::Str(text),
        Value::Array(items) | Value::Set(items) => array(items),
        Value::Map(pairs) => array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Value::Attribute { data, .. } => to_reply(*data),
        Value::Double(d) => Reply::Str(d.to_string()),
        Value::Boolean(b) => Reply::Int(i64::from(b)),
        Value::BigNumber(_) => Reply::error("rollcall: unexpected big number in a reply"),
        Value::Push { kind, .. } => Reply::error(format!(
            "rollcall: unexpected push message ({kind:?}) in place of a reply"
        )),
        Value::ServerError(e) => Reply::error(e.to_string()),
        other => Reply::error(format!("rollcall: unexpected reply {other:?}")),
    }
}

/// An array whose first error (a non-UTF-8 item, say) makes the whole reply
/// an error: the core must never see half a reply.
fn array(items: Vec<Value>) -> Reply {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match to_reply(item) {
            Reply::Error { error } => return Reply::Error { error },
            r => out.push(r),
        }
    }
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_and_resp3_shapes_map_alike() {
        let resp2 = Value::Array(vec![
            Value::BulkString(b"OK".to_vec()),
            Value::BulkString(b"".to_vec()),
            Value::Int(1),
            Value::BulkString(b"u1:gann".to_vec()),
        ]);
        let resp3 = Value::Array(vec![
            Value::SimpleString("OK".into()),
            Value::VerbatimString {
                format: redis::VerbatimFormat::Text,
                text: String::new(),
            },
            Value::Int(1),
            Value::BulkString(b"u1:gann".to_vec()),
        ]);
        let want = Reply::Array(vec![
            Reply::Str("OK".into()),
            Reply::Str(String::new()),
            Reply::Int(1),
            Reply::Str("u1:gann".into()),
        ]);
        assert_eq!(to_reply(resp2), want);
        assert_eq!(to_reply(resp3), want);
        assert_eq!(
            to_reply(Value::Set(vec![Value::Int(2)])),
            Reply::Array(vec![Reply::Int(2)])
        );
        assert_eq!(to_reply(Value::Nil), Reply::Nil);
        assert_eq!(to_reply(Value::Okay), Reply::Str("OK".into()));
    }

    #[test]
    fn non_utf8_is_an_error_with_a_clear_message() {
        let r = to_reply(Value::Array(vec![Value::BulkString(vec![b'a', 0xff])]));
        match r {
            Reply::Error { error } => assert!(error.contains("not UTF-8"), "{error}"),
            other => panic!("{other:?}"),
        }
    }
}
