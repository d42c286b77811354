//! The facade as the tracker sees it: inputs in, field deltas out, with
//! the grace period and the dirty tracking working together.

use super::*;
use crate::scope::Scope;

fn fields(local: &mut Local) -> Vec<(String, i64)> {
    local
        .take_deltas(usize::MAX)
        .into_iter()
        .map(|(f, _, d)| (f, d))
        .collect()
}

fn commit_all(local: &mut Local) {
    let d: Vec<(Key, i64)> = local
        .take_deltas(usize::MAX)
        .into_iter()
        .map(|(_, k, d)| (k, d))
        .collect();
    local.commit_deltas(&d);
}

#[test]
fn field_names_are_the_schema_encodings() {
    let mut l = Local::new();
    let long = "x".repeat(200);
    l.connect("s1", Some("ann"), &format!("/{long}")).unwrap();
    l.join("s1", "room").unwrap();
    l.client_open("c1").unwrap();
    let scopes = [
        Scope::Global,
        Scope::namespace(format!("/{long}")),
        Scope::room(format!("/{long}"), "room"),
    ];
    let mut want = vec![Field::Clients.encode()];
    for scope in scopes {
        want.push(Field::Sockets(scope.clone()).encode());
        want.push(Field::User(scope, "ann".into()).encode());
    }
    want.sort();
    let got: Vec<String> = fields(&mut l).into_iter().map(|(f, _)| f).collect();
    assert_eq!(got, want);
}

#[test]
fn a_long_dirty_list_gives_way_to_a_scan_with_the_same_deltas() {
    let mut l = Local::new();
    for i in 0..3000 {
        l.connect(&format!("s{i}"), Some(&format!("u{}", i / 3)), "/")
            .unwrap();
        l.join(&format!("s{i}"), &format!("r{}", i % 7)).unwrap();
    }
    assert!(l.counters.scanning());
    for i in 0..1500 {
        l.disconnect(&format!("s{i}"), 0, 0).unwrap();
    }
    let got = fields(&mut l);
    assert!(!l.has_dirty());
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(got.contains(&("sg".to_string(), 1500)));
    assert!(!got.iter().any(|(f, _)| f == "u1:gu0"));
    assert_eq!(l.interned().1, 500);
}

#[test]
fn a_socket_counts_in_global_namespace_and_rooms() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    l.join("s1", "news").unwrap();
    let mut got = fields(&mut l);
    got.sort();
    let mut want = vec![
        ("sg".to_string(), 1),
        ("sn/".to_string(), 1),
        ("sr1:/news".to_string(), 1),
        ("u1:gann".to_string(), 1),
        ("u2:n/ann".to_string(), 1),
        ("u8:r1:/newsann".to_string(), 1),
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn connect_and_disconnect_in_one_burst_cancel_out_and_free_names() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/chat").unwrap();
    l.join("s1", "r").unwrap();
    l.disconnect("s1", 0, 0).unwrap();
    assert!(fields(&mut l).is_empty());
    assert_eq!(l.interned(), (1, 0), "only the global scope stays interned");
}

#[test]
fn anonymous_sockets_count_as_sockets_only() {
    let mut l = Local::new();
    l.connect("s1", None, "/").unwrap();
    let got = fields(&mut l);
    assert!(got.iter().all(|(f, _)| f.starts_with('s')), "{got:?}");
}

#[test]
fn duplicates_and_unknowns_are_refused_without_change() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    commit_all(&mut l);
    assert_eq!(l.connect("s1", Some("bob"), "/"), Err(Refusal::Duplicate));
    assert_eq!(l.disconnect("nope", 0, 0), Err(Refusal::Unknown));
    assert_eq!(l.join("nope", "r"), Err(Refusal::Unknown));
    assert_eq!(l.client_close("c"), Err(Refusal::Unknown));
    assert!(fields(&mut l).is_empty());
    assert_eq!(l.join("s1", "r"), Ok(true));
    assert_eq!(l.join("s1", "r"), Ok(false));
    assert_eq!(l.leave("s1", "other"), Ok(false));
}

#[test]
fn a_reload_within_the_grace_period_writes_nothing() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    l.join("s1", "news").unwrap();
    commit_all(&mut l);
    l.disconnect("s1", 100, 500).unwrap();
    l.connect("s2", Some("ann"), "/").unwrap();
    l.join("s2", "news").unwrap();
    l.expire_lingering(1_000);
    assert!(fields(&mut l).is_empty());
    assert_eq!(l.next_linger_deadline(), None);
}

#[test]
fn the_grace_period_ends_with_the_decrement() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    commit_all(&mut l);
    l.disconnect("s1", 100, 500).unwrap();
    assert_eq!(l.next_linger_deadline(), Some(600));
    l.expire_lingering(599);
    assert!(fields(&mut l).is_empty());
    l.expire_lingering(600);
    assert_eq!(fields(&mut l).len(), 4);
}

#[test]
fn a_reconnect_that_skips_a_room_lets_that_room_go_at_the_deadline() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    l.join("s1", "a").unwrap();
    l.join("s1", "b").unwrap();
    commit_all(&mut l);
    l.disconnect("s1", 0, 100).unwrap();
    l.connect("s2", Some("ann"), "/").unwrap();
    l.join("s2", "a").unwrap();
    assert!(fields(&mut l).is_empty());
    l.expire_lingering(100);
    let mut got = fields(&mut l);
    got.sort();
    assert_eq!(
        got,
        vec![("sr1:/b".to_string(), -1), ("u5:r1:/bann".to_string(), -1)]
    );
}

#[test]
fn identify_moves_a_sockets_namespace_and_rooms_to_the_new_user_in_one_write() {
    let mut l = Local::new();
    l.connect("s1", None, "/").unwrap();
    l.join("s1", "lobby").unwrap();
    commit_all(&mut l);
    let user = |scope: Scope, u: &str| Field::User(scope, u.into()).encode();
    let lobby = || Scope::room("/", "lobby");

    assert_eq!(l.identify("s1", Some("ann")), Ok(true));
    let mut want = vec![
        (user(Scope::Global, "ann"), 1),
        (user(Scope::namespace("/"), "ann"), 1),
        (user(lobby(), "ann"), 1),
    ];
    want.sort();
    let got = l.take_deltas(usize::MAX);
    let named: Vec<(String, i64)> = got.iter().map(|(f, _, d)| (f.clone(), *d)).collect();
    assert_eq!(named, want, "socket counts are unchanged: no delta");
    l.commit_deltas(&got.into_iter().map(|(_, k, d)| (k, d)).collect::<Vec<_>>());
    assert_eq!(
        l.identify("s1", Some("ann")),
        Ok(false),
        "the same user: nothing"
    );
    assert!(!l.has_dirty());

    // To bob: ann goes at once (no grace: the socket did not leave).
    assert_eq!(l.identify("s1", Some("bob")), Ok(true));
    let got = fields(&mut l);
    assert!(got.contains(&(user(lobby(), "ann"), -1)), "{got:?}");
    assert!(got.contains(&(user(Scope::Global, "bob"), 1)), "{got:?}");
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(l.user_count(), 1);
    assert_eq!(l.identify("nope", Some("bob")), Err(Refusal::Unknown));
}

#[test]
fn identify_to_a_user_in_their_grace_period_resumes_them() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    l.join("s1", "lobby").unwrap();
    l.connect("s2", None, "/").unwrap();
    l.join("s2", "lobby").unwrap();
    commit_all(&mut l);
    l.disconnect("s1", 0, 1_000).unwrap(); // ann lingers
    l.identify("s2", Some("ann")).unwrap();
    l.expire_lingering(5_000);
    let got = fields(&mut l);
    // ann's counts stay at 1 everywhere (her linger gave way); one socket fewer.
    assert!(
        got.iter().all(|(f, _)| !f.starts_with('u')),
        "ann never left: {got:?}"
    );
    assert_eq!(l.socket_count(), 1);
}

/// The data writes of the next call, committed, as (field, JSON).
fn data_writes(local: &mut Local) -> Vec<(String, String)> {
    let w = local.take_data(usize::MAX);
    local.commit_data(&w);
    w.into_iter().map(|w| (w.field, w.json)).collect()
}

#[test]
fn a_reload_within_the_grace_period_swaps_the_data_in_one_write() {
    let mut l = Local::new();
    l.connect("s1", Some("ann"), "/").unwrap();
    l.set_data("s1", Some(r#"{"a":1}"#)).unwrap();
    assert_eq!(data_writes(&mut l), [(s("d3:anns1"), s(r#"{"a":1}"#))]);
    // The tab reloads: the old socket lingers, and so does its data, also
    // once the new socket holds the namespace.
    l.disconnect("s1", 1_000, 500).unwrap();
    l.connect("s2", Some("ann"), "/").unwrap();
    assert!(data_writes(&mut l).is_empty());
    // The new socket's data replaces it in the same write.
    l.set_data("s2", Some(r#"{"a":2}"#)).unwrap();
    assert_eq!(
        data_writes(&mut l),
        [(s("d3:anns1"), s("")), (s("d3:anns2"), s(r#"{"a":2}"#))]
    );
    // Without new data, lingering data goes at the deadline.
    l.disconnect("s2", 2_000, 500).unwrap();
    l.expire_lingering(2_499);
    assert!(data_writes(&mut l).is_empty());
    l.expire_lingering(2_500);
    assert_eq!(data_writes(&mut l), [(s("d3:anns2"), s(""))]);
    // An anonymous socket's data is kept, and shown once it has a user.
    l.connect("s3", None, "/").unwrap();
    l.set_data("s3", Some("{}")).unwrap();
    assert!(data_writes(&mut l).is_empty());
    l.identify("s3", Some("bob")).unwrap();
    assert_eq!(data_writes(&mut l), [(s("d3:bobs3"), s("{}"))]);
    assert_eq!(l.set_data("nope", None), Err(Refusal::Unknown));
}

fn s(v: &str) -> String {
    v.to_owned()
}
