//! The socketioxide example (`host/examples/socketio.rs`), built and run as
//! a process against a real redis-server, with real Socket.IO clients
//! (rust_socketio): the cluster-wide counts follow connects, rooms and
//! disconnects, and SIGTERM leaves nothing in Redis.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use rollcall_host::{Reader, RedisStore, Scope, dump};
use rollcall_tests::process::{ChildGuard, host_example};
use rollcall_tests::{RedisServer, eventually_async, unique_prefix};
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use serde_json::{Value, json};
use tokio::sync::oneshot;

async fn client(port: u16, namespace: &str, user: Option<&str>) -> Client {
    // Websocket from the handshake on: with polling first, rust_socketio's
    // upgrade now and then (about one run in two on this machine) left a
    // client closed: the server saw a transport close, and the client's
    // next emit never went (IllegalActionBeforeOpen).
    let mut b = ClientBuilder::new(format!("http://127.0.0.1:{port}/"))
        .namespace(namespace)
        .transport_type(TransportType::Websocket)
        .reconnect(false);
    if let Some(u) = user {
        b = b.auth(json!({ "user": u }));
    }
    b.connect().await.expect("socket.io client connects")
}

/// Emits with an ack and returns the first value of the ack.
async fn ask(c: &Client, event: &str, data: Value) -> Value {
    let (tx, rx) = oneshot::channel();
    let tx = Arc::new(Mutex::new(Some(tx)));
    c.emit_with_ack(
        event,
        data,
        Duration::from_secs(10),
        move |payload: Payload, _: Client| {
            let tx = tx.clone();
            async move {
                // rust_socketio hands the ack's argument list as one array.
                let v = match payload {
                    Payload::Text(mut values) if !values.is_empty() => match values.remove(0) {
                        Value::Array(mut args) if args.len() == 1 => args.remove(0),
                        v => v,
                    },
                    other => json!({ "unexpected": format!("{other:?}") }),
                };
                if let Some(tx) = tx.lock().unwrap().take() {
                    let _ = tx.send(v);
                }
            }
            .boxed()
        },
    )
    .await
    .expect("emit");
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("an ack within 10 s")
        .expect("ack sent")
}

/// (global sockets, global users, sockets in "/", users in lobby, users in /chat dev)
async fn snapshot(
    r: &Reader,
) -> Result<(u64, u64, u64, Vec<String>, Vec<String>), rollcall_host::Error> {
    Ok((
        r.sockets_count(Scope::Global).await?,
        r.users_count(Scope::Global).await?,
        r.sockets_count(Scope::namespace("/")).await?,
        r.users_list(Scope::room("/", "lobby")).await?,
        r.users_list(Scope::room("/chat", "dev")).await?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketioxide_example_counts_real_clients() {
    let redis = RedisServer::start();
    let prefix = unique_prefix("sio");
    let mut server = ChildGuard::spawn(Command::new(host_example("socketio")).args([
        "--port",
        "0",
        "--redis",
        &redis.url(),
        "--prefix",
        &prefix,
        "--ttl-ms",
        "2000",
    ]));
    let port: u16 = server.wait_line(Duration::from_secs(30), |l| {
        l.strip_prefix("listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
    });
    let store = RedisStore::connect(&redis.url(), Duration::from_secs(2))
        .await
        .unwrap();
    let reader = Reader::new(store.clone().into(), &prefix);

    let ann1 = client(port, "/", Some("ann")).await;
    let ann2 = client(port, "/", Some("ann")).await;
    let bob = client(port, "/chat", Some("bob")).await;
    let anon = client(port, "/", None).await;
    assert_eq!(ask(&ann1, "join", json!("lobby")).await, json!(true));
    assert_eq!(ask(&bob, "join", json!("dev")).await, json!(true));

    let want = (4, 2, 3, vec!["ann".to_owned()], vec!["bob".to_owned()]);
    let _ = eventually_async(
        "4 sockets, 2 users, ann in lobby, bob in dev",
        Duration::from_secs(20),
        || snapshot(&reader),
        |s| s.as_ref().is_ok_and(|s| *s == want),
    )
    .await;
    // The server answers from the same cluster-wide counts.
    let stats = ask(&ann2, "stats", json!({ "room": "lobby" })).await;
    assert_eq!(
        stats,
        json!({ "sockets": 1, "users": ["ann"], "global_users": 2 })
    );

    // One of ann's tabs closes: ann stays online, the lobby empties.
    ann1.disconnect().await.unwrap();
    let want = (3, 2, 2, vec![], vec!["bob".to_owned()]);
    let _ = eventually_async(
        "ann's first tab gone",
        Duration::from_secs(20),
        || snapshot(&reader),
        |s| s.as_ref().is_ok_and(|s| *s == want),
    )
    .await;
    assert_eq!(reader.user_sockets_count("ann").await.unwrap(), 1);

    // Her last tab closes: she is offline.
    ann2.disconnect().await.unwrap();
    let _ = eventually_async(
        "ann offline",
        Duration::from_secs(20),
        || reader.is_user_connected("ann"),
        |c| matches!(c, Ok(false)),
    )
    .await;
    assert_eq!(reader.users_list(Scope::Global).await.unwrap(), vec!["bob"]);

    // SIGTERM: the server shuts presence down cleanly before exiting.
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "example exited with {status}");
    let lines: Vec<String> = server.lines.try_iter().collect();
    assert!(
        lines.iter().any(|l| l == "presence closed"),
        "no clean shutdown in {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("\"reason\":\"shutdown\"")),
        "no shutdown offline events in {lines:?}"
    );
    let left = dump::keys(&store, reader.schema()).await.unwrap();
    let schema = reader.schema();
    assert_eq!(
        left,
        [schema.feed(), schema.seen()],
        "only the feed and last seen"
    );
    drop((bob, anon));
}
