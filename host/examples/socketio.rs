//! A Socket.IO server (socketioxide 0.18 on plain hyper) that embeds
//! rollcall presence.
//!
//! ```text
//! cargo run -p rollcall-host --example socketio -- --port 3000 --redis redis://127.0.0.1:6379
//! ```
//!
//! Clients connect to `/` or `/chat` with `auth: { userId: "alice" }` (or
//! `{ user: "alice" }`; neither: anonymous), emit `join` / `leave` with a
//! room name, `stats` with an ack to get the counts of their namespace (or
//! of `{ room }`), and `presence` with an ack for any counts (see
//! [`presence_report`]). socketioxide has no room events, so the app tells
//! rollcall itself where it joins sockets to rooms. Without `--redis`
//! presence lives in this process' memory.
//!
//! Engine-level clients count too (as `clientsCount()` does on a Node
//! server): socketioxide hands out namespace sockets, not their engine.io
//! connection, so a connection is known by its request, which every
//! namespace socket of one connection shares (see [`Engines`]).
//!
//! Ctrl-C or SIGTERM shuts presence down cleanly before the process exits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use rollcall_host::{Presence, Scope};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
use tokio::net::TcpListener;

struct Options {
    port: u16,
    redis: Option<String>,
    prefix: String,
    ttl_ms: u64,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        port: 3000,
        redis: None,
        prefix: "rollcall".into(),
        ttl_ms: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--redis" => o.redis = Some(value()?),
            "--prefix" => o.prefix = value()?,
            "--ttl-ms" => o.ttl_ms = value()?.parse().map_err(|e| format!("--ttl-ms: {e}"))?,
            "--help" | "-h" => {
                println!(
                    "usage: socketio [--port N] [--redis URL] [--prefix P] [--ttl-ms MS]\n\
                     A Socket.IO server on 127.0.0.1 that counts presence with rollcall."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other} (try --help)")),
        }
    }
    Ok(o)
}

/// Logs an input rollcall refused (the app goes on either way).
fn log_refused(
    what: &'static str,
    input: impl Future<Output = Result<(), rollcall_host::Error>> + Send + 'static,
) {
    tokio::spawn(async move {
        if let Err(e) = input.await {
            eprintln!("rollcall: {what} refused: {e}");
        }
    });
}

/// The engine.io connections of this server, each with its open namespace
/// sockets. The first socket of a connection opens its rollcall client, the
/// last one to leave closes it; a connection that never gets a namespace
/// socket (refused by a middleware) is not counted.
#[derive(Clone, Default)]
struct Engines(Arc<Mutex<HashMap<usize, (String, usize)>>>);

impl Engines {
    /// The connection of `socket`: the address of its request, shared by
    /// the connection's sockets and stable while any of them is open.
    fn key(socket: &SocketRef) -> usize {
        std::ptr::from_ref(socket.req_parts()) as usize
    }

    /// A socket connected: opens its connection's client if it is the
    /// first, then connects the socket. Under the lock, so the inputs of
    /// two sockets of one connection reach rollcall in the order counted.
    fn connect(&self, socket: &SocketRef, user: Option<&str>, presence: &Presence) {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sid = socket.id.to_string();
        let (_, sockets) = open.entry(Self::key(socket)).or_insert_with(|| {
            let cid = format!("engine-{sid}");
            log_refused("client open", presence.client_open(&cid));
            (cid, 0)
        });
        *sockets += 1;
        log_refused("connect", presence.connect(&sid, user, socket.ns()));
    }

    /// A socket disconnected: disconnects it, then closes its connection's
    /// client if it was the last.
    fn disconnect(&self, socket: &SocketRef, presence: &Presence) {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log_refused("disconnect", presence.disconnect(&socket.id.to_string()));
        let key = Self::key(socket);
        if let Some((cid, sockets)) = open.get_mut(&key) {
            *sockets -= 1;
            if *sockets == 0 {
                log_refused("client close", presence.client_close(cid));
                open.remove(&key);
            }
        }
    }
}

/// A socket connected: tell rollcall before any await, and hook the rest.
fn on_connect(socket: SocketRef, auth: Option<Value>, presence: &Presence, engines: &Engines) {
    let user = auth
        .as_ref()
        .and_then(|a| a.get("userId").or_else(|| a.get("user")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Queued now, in order: a disconnect below can never overtake it.
    engines.connect(&socket, user.as_deref(), presence);

    let p = presence.clone();
    socket.on(
        "join",
        move |socket: SocketRef, Data::<String>(room), ack: AckSender| {
            socket.join(room.clone());
            let joined = p.join(&socket.id.to_string(), &room);
            async move {
                let ok = joined.await.is_ok();
                ack.send(&ok).ok();
            }
        },
    );
    let p = presence.clone();
    socket.on(
        "leave",
        move |socket: SocketRef, Data::<String>(room), ack: AckSender| {
            socket.leave(room.clone());
            let left = p.leave(&socket.id.to_string(), &room);
            async move {
                let ok = left.await.is_ok();
                ack.send(&ok).ok();
            }
        },
    );
    let p = presence.clone();
    socket.on(
        "stats",
        move |socket: SocketRef, TryData::<Value>(scope), ack: AckSender| {
            let p = p.clone();
            let ns = socket.ns().to_owned();
            async move {
                let room = scope
                    .ok()
                    .and_then(|v| v.get("room").and_then(Value::as_str).map(str::to_owned));
                let scope = match room {
                    Some(room) => Scope::room(ns, room),
                    None => Scope::namespace(ns),
                };
                let stats = async {
                    Ok::<_, rollcall_host::Error>(json!({
                        "sockets": p.sockets_count(scope.clone()).await?,
                        "users": p.users_list(scope.clone()).await?,
                        "global_users": p.users_count(Scope::Global).await?,
                    }))
                }
                .await
                .unwrap_or_else(|e| json!({ "error": e.to_string() }));
                ack.send(&stats).ok();
            }
        },
    );
    let p = presence.clone();
    socket.on("presence", move |TryData::<Value>(ask), ack: AckSender| {
        let p = p.clone();
        async move {
            let report = presence_report(&p, &ask.unwrap_or(Value::Null))
                .await
                .unwrap_or_else(|e| json!({ "error": e.to_string() }));
            ack.send(&report).ok();
        }
    });
    let (p, engines) = (presence.clone(), engines.clone());
    socket.on_disconnect(move |socket: SocketRef| {
        engines.disconnect(&socket, &p);
        async {}
    });
}

/// The answer to `presence`, asked with `{ scopes: [{ namespace, room? }],
/// users: [userId] }` (both optional): cluster-wide `clients`, `sockets`,
/// `users` and the sorted `list` of users, `{ sockets, users, members }` per
/// asked scope (`members`: the first page, `[user, sockets]` each), and the
/// socket count and the rooms (`[namespace, room or null]`) of each asked
/// user.
async fn presence_report(p: &Presence, ask: &Value) -> Result<Value, rollcall_host::Error> {
    let mut scopes = Vec::new();
    for s in ask
        .get("scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let ns = s.get("namespace").and_then(Value::as_str).unwrap_or("/");
        let scope = match s.get("room").and_then(Value::as_str) {
            Some(room) => Scope::room(ns, room),
            None => Scope::namespace(ns),
        };
        let page = p.members(scope.clone(), 1000, None).await?;
        scopes.push(json!({
            "sockets": p.sockets_count(scope.clone()).await?,
            "users": p.users_count(scope).await?,
            "members": page.members.iter().map(|m| json!([m.user, m.sockets])).collect::<Vec<_>>(),
        }));
    }
    let mut users = serde_json::Map::new();
    let mut rooms = serde_json::Map::new();
    for u in ask
        .get("users")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(u) = u.as_str() {
            users.insert(u.to_owned(), p.user_sockets_count(u).await?.into());
            let places = p
                .user_rooms(u)
                .await?
                .into_iter()
                .map(|place| match place.scope {
                    Scope::Room { namespace, room } => json!([namespace, room]),
                    Scope::Namespace { namespace } => json!([namespace, null]),
                    Scope::Global => json!(["", null]),
                });
            rooms.insert(u.to_owned(), places.collect::<Vec<_>>().into());
        }
    }
    Ok(json!({
        "clients": p.clients_count().await?,
        "sockets": p.sockets_count(Scope::Global).await?,
        "users": p.users_count(Scope::Global).await?,
        "list": p.users_list(Scope::Global).await?,
        "scopes": scopes,
        "userSockets": users,
        "userRooms": rooms,
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options().map_err(|e| {
        eprintln!("socketio: {e}");
        std::process::exit(2)
    })?;
    let mut builder = Presence::builder()
        .prefix(o.prefix)
        .ttl(std::time::Duration::from_millis(o.ttl_ms));
    builder = builder.heartbeat(std::time::Duration::from_millis(o.ttl_ms / 4));
    builder = builder.reap_interval(std::time::Duration::from_millis(o.ttl_ms / 4));
    if let Some(url) = o.redis {
        builder = builder.redis(url);
    }
    let presence = builder.start().await?;
    // One line per event; ends after the last one (Closed).
    let mut events = presence.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if let Ok(line) = serde_json::to_string(&event) {
                println!("event {line}");
            }
            if event == rollcall_host::Event::Closed {
                break;
            }
        }
    });

    let (svc, io) = SocketIo::new_svc();
    let engines = Engines::default();
    for ns in ["/", "/chat"] {
        let (p, engines) = (presence.clone(), engines.clone());
        io.ns(ns, move |socket: SocketRef, TryData::<Value>(auth)| {
            // Runs when the socket connects, before the returned future.
            on_connect(socket, auth.ok(), &p, &engines);
            async {}
        });
    }

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], o.port))).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("node {}", presence.node_id());

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let svc = svc.clone();
                tokio::spawn(async move {
                    let conn = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    if let Err(e) = conn.await {
                        eprintln!("socketio: connection error: {e}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    match presence.shutdown().await {
        Ok(()) => {
            // Every event (the shutdown's offline ones too) is out first.
            let _ = printer.await;
            println!("presence closed");
        }
        Err(e) => eprintln!("socketio: shutdown: {e}"),
    }
    Ok(())
}
