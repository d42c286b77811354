//! The keyspace invariants, checked on a dump of the model or of real Redis.
//!
//! 1. Every cluster-wide counter equals the sum of the registered
//!    incarnations' own counts (live ones, and dead ones still being reaped).
//! 2. No counter, and no own count, is <= 0.
//! 3. No key is left of an incarnation that is gone (its share, version,
//!    node entry or kept replies), and no key is unknown.
//! 4. No user online (globally) has a last-seen stamp.
//! 5. A user is in a scope's member list (score 0) and the scope in the
//!    user's scopes exactly while the user is counted in the scope.
//! 6. A socket's data is stored (`d:<user>`, not empty) exactly while its
//!    marker (score 1) is in a registered incarnation's own share.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{DumpEntry, DumpValue};
use crate::schema::{Field, KeyKind, Schema, Target};

/// Every violation found, one sentence each; empty when the keyspace is sound.
pub fn check(dump: &[DumpEntry], schema: &Schema) -> Vec<String> {
    let mut bad = Vec::new();
    let mut registered: BTreeSet<&str> = BTreeSet::new();
    let mut own: BTreeMap<String, &[(String, i64)]> = BTreeMap::new();
    let mut counters: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut versions: Vec<&str> = Vec::new();
    let mut nodes: Vec<(&str, &str)> = Vec::new();
    let mut kept: Vec<String> = Vec::new();
    let mut clock = false;
    let mut seen: Vec<&str> = Vec::new();
    // (scope id, user) pairs of the user counters, member lists, user scopes.
    let mut counted: BTreeSet<(String, String)> = BTreeSet::new();
    let mut listed: BTreeSet<(String, String)> = BTreeSet::new();
    let mut placed: BTreeSet<(String, String)> = BTreeSet::new();
    // (data key, slot) pairs of the stored data and of the own markers.
    let mut stored: BTreeSet<(String, String)> = BTreeSet::new();
    let mut markers: BTreeSet<(String, String)> = BTreeSet::new();

    for entry in dump {
        if !entry.key.starts_with(schema.base()) {
            continue;
        }
        match (schema.parse_key(&entry.key), &entry.value) {
            (Some(KeyKind::Live | KeyKind::Dead), DumpValue::Zset(members)) => {
                registered.extend(members.iter().map(|(m, _)| m.as_str()));
            }
            (Some(KeyKind::Versions), DumpValue::Hash(fields)) => {
                versions.extend(fields.iter().map(|(f, _)| f.as_str()));
            }
            (Some(KeyKind::Nodes), DumpValue::Hash(fields)) => {
                nodes.extend(fields.iter().map(|(f, v)| (f.as_str(), v.as_str())));
            }
            (Some(KeyKind::Clock), DumpValue::String(_)) => clock = true,
            (Some(kind @ (KeyKind::Counts | KeyKind::Users { .. })), DumpValue::Hash(fields)) => {
                for (f, v) in fields {
                    if let KeyKind::Users { scope_id } = &kind {
                        counted.insert((scope_id.clone(), f.clone()));
                    }
                    counters.insert(
                        (entry.key.clone(), f.clone()),
                        parse(v, &mut bad, &entry.key),
                    );
                }
            }
            (Some(KeyKind::Members { scope_id }), DumpValue::Zset(members)) => {
                for (user, score) in members {
                    if *score != 0 {
                        bad.push(format!("{} {user:?} has score {score}, not 0", entry.key));
                    }
                    listed.insert((scope_id.clone(), user.clone()));
                }
            }
            (Some(KeyKind::UserScopes { user }), DumpValue::Hash(fields)) => {
                for (scope_id, since) in fields {
                    parse(since, &mut bad, &entry.key);
                    placed.insert((scope_id.clone(), user.clone()));
                }
            }
            (Some(KeyKind::Data { .. }), DumpValue::Hash(fields)) => {
                for (slot, json) in fields {
                    if json.is_empty() {
                        bad.push(format!("{} {slot:?} is empty", entry.key));
                    }
                    stored.insert((entry.key.clone(), slot.clone()));
                }
            }
            (Some(KeyKind::Own { incarnation }), DumpValue::Zset(members)) => {
                own.insert(incarnation, members);
            }
            (Some(KeyKind::KeptReply { incarnation, .. }), DumpValue::String(_)) => {
                kept.push(incarnation);
            }
            (Some(KeyKind::Feed), DumpValue::Stream(_)) => {}
            (Some(KeyKind::Seen), DumpValue::Zset(members)) => {
                seen.extend(members.iter().map(|(m, _)| m.as_str()));
            }
            _ => bad.push(format!("unknown key {:?}", entry.key)),
        }
    }

    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (inc, members) in &own {
        if !registered.contains(inc.as_str()) {
            bad.push(format!("key of gone incarnation {inc:?} is left"));
        }
        for (field, count) in members.iter() {
            if *count <= 0 {
                bad.push(format!("{inc:?} holds {field:?} at {count}"));
            }
            let target = match Field::target(field) {
                Some(Target::Data { user, sid }) => {
                    if *count != 1 {
                        bad.push(format!("{inc:?} holds data marker {field:?} at {count}"));
                    }
                    markers.insert((schema.data(&user), crate::schema::data_slot(inc, &sid)));
                    continue;
                }
                Some(Target::Count(f)) => (schema.counts(), f),
                Some(Target::User { scope_id, user }) => (schema.users_of_id(&scope_id), user),
                None => {
                    bad.push(format!("{inc:?} holds malformed field {field:?}"));
                    continue;
                }
            };
            *expected.entry(target).or_default() += count;
        }
    }
    for ((key, field), value) in &counters {
        if *value <= 0 {
            bad.push(format!("{key} {field:?} is {value}"));
        }
        let want = expected
            .get(&(key.clone(), field.clone()))
            .copied()
            .unwrap_or(0);
        if *value != want {
            bad.push(format!(
                "{key} {field:?} is {value}, but the nodes' own counts sum to {want}"
            ));
        }
    }
    for ((key, field), want) in &expected {
        if !counters.contains_key(&(key.clone(), field.clone())) {
            bad.push(format!(
                "{key} {field:?} is missing, but the nodes' own counts sum to {want}"
            ));
        }
    }
    for (key, slot) in stored.difference(&markers) {
        bad.push(format!(
            "{key} {slot:?} is stored, but no node holds its marker"
        ));
    }
    for (key, slot) in markers.difference(&stored) {
        bad.push(format!("{key} {slot:?} is marked, but not stored"));
    }
    for inc in versions {
        if !registered.contains(inc) {
            bad.push(format!("version of gone incarnation {inc:?} is left"));
        }
    }
    for inc in kept {
        if !registered.contains(inc.as_str()) {
            bad.push(format!("kept reply of gone incarnation {inc:?} is left"));
        }
    }
    for (node, k) in nodes {
        if !registered.contains(format!("{node}/{k}").as_str()) {
            bad.push(format!("node {node:?} points to gone incarnation {k}"));
        }
    }
    if clock && registered.is_empty() {
        bad.push("the clock is left with no node registered".to_owned());
    }
    let global = schema.users(&crate::scope::Scope::Global);
    for user in seen {
        if counters.contains_key(&(global.clone(), user.to_owned())) {
            bad.push(format!("user {user:?} is online but has a last-seen stamp"));
        }
    }
    for (what, pairs) in [("member list", &listed), ("user's scopes", &placed)] {
        for (scope_id, user) in pairs.difference(&counted) {
            bad.push(format!(
                "user {user:?} is in the {what} of scope {scope_id:?} but not counted there"
            ));
        }
        for (scope_id, user) in counted.difference(pairs) {
            bad.push(format!(
                "user {user:?} is counted in scope {scope_id:?} but not in its {what}"
            ));
        }
    }
    bad
}

fn parse(v: &str, bad: &mut Vec<String>, key: &str) -> i64 {
    v.parse().unwrap_or_else(|_| {
        bad.push(format!("{key} holds non-integer {v:?}"));
        0
    })
}
