//! The Rust server of the live "who is online" page
//! (`examples/who-is-online/`): socketioxide 0.18 on plain hyper with
//! rollcall presence, serving the same page files and answering the same
//! socket events as the page's Node server (`examples/who-is-online/server.js`).
//!
//! ```text
//! node examples/who-is-online/start.js --redis redis://127.0.0.1:6379   # starts it with two Node servers
//! cargo run -p rollcall-host --example who_is_online -- --port 3002 --redis redis://127.0.0.1:6379 \
//!     --public examples/who-is-online/public --client-js PATH/socket.io/client-dist/socket.io.min.js
//! ```
//!
//! The page connects with the query `?user=NAME&status=STATUS`; a socket
//! without a user is refused (a middleware), as the Node server does. Each
//! socket's data is `{ name, status }`. Socket events:
//! - `join` / `leave` (room name, ack): the socket joins or leaves the room;
//! - `status` (one of `online`, `away`, `busy`, ack): the socket's data;
//! - `state` (`{ rooms: [name], room }`, ack): `{ server, counts: { room:
//!   users }, room, members: [{ userId, sockets, since, data }] }`.
//!
//! The server runs `presence.watch()` and emits `presence` (the change, as
//! the Node server sends it) to every client on each change of the cluster;
//! the page then asks for `state`.
//!
//! HTTP: `/`, `/app.js`, `/style.css` from `--public`; `/config.json` (this
//! server's label and the cluster's URLs, `--servers`); the Socket.IO
//! browser client at `/socket.io/socket.io.js` (the file a Node Socket.IO
//! server serves, `--client-js`); everything else under `/socket.io/` is
//! socketioxide's. Ctrl-C or SIGTERM shuts presence down cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rollcall_host::{Change, DataExt, Presence, Scope};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use tokio::net::TcpListener;

/// The statuses a user can pick (the page's select).
const STATUSES: [&str; 3] = ["online", "away", "busy"];

struct Options {
    port: u16,
    redis: Option<String>,
    prefix: String,
    ttl_ms: u64,
    heartbeat_ms: Option<u64>,
    reap_ms: Option<u64>,
    grace_ms: u64,
    public: PathBuf,
    client_js: Option<PathBuf>,
    label: String,
    servers: Vec<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        port: 3002,
        redis: None,
        prefix: "rollcall".into(),
        ttl_ms: 10_000,
        heartbeat_ms: None,
        reap_ms: None,
        grace_ms: 5_000,
        public: PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/who-is-online/public"
        )),
        client_js: None,
        label: "rust".into(),
        servers: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    let ms = |flag: &str, v: String| v.parse::<u64>().map_err(|e| format!("{flag}: {e}"));
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => o.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--redis" => o.redis = Some(value()?),
            "--prefix" => o.prefix = value()?,
            "--ttl-ms" => o.ttl_ms = ms(&flag, value()?)?,
            "--heartbeat-ms" => o.heartbeat_ms = Some(ms(&flag, value()?)?),
            "--reap-ms" => o.reap_ms = Some(ms(&flag, value()?)?),
            "--grace-ms" => o.grace_ms = ms(&flag, value()?)?,
            "--public" => o.public = PathBuf::from(value()?),
            "--client-js" => o.client_js = Some(PathBuf::from(value()?)),
            "--label" => o.label = value()?,
            "--servers" => {
                o.servers = value()?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }
            "--help" | "-h" => {
                println!(
                    "usage: who_is_online [--port N] [--redis URL] [--prefix P] [--ttl-ms MS]\n\
                     \x20   [--heartbeat-ms MS] [--reap-ms MS] [--grace-ms MS] [--public DIR]\n\
                     \x20   [--client-js FILE] [--label NAME] [--servers URL,URL,...]\n\
                     The Rust server of the live \"who is online\" page, on 127.0.0.1."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other} (try --help)")),
        }
    }
    Ok(o)
}

/// A query parameter of the socket's handshake (`?user=...&status=...`),
/// percent-decoded.
fn query_param(socket: &SocketRef, name: &str) -> Option<String> {
    let query = socket.req_parts().uri.query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); a bad
/// escape is kept as it is.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user a socket says it is: the page's `?user=` (a real app decides
/// it from a session or a signed token, as the Node server's comment says).
fn user_of(socket: &SocketRef) -> Option<String> {
    let user = query_param(socket, "user")?.trim().to_owned();
    (!user.is_empty() && user.chars().count() <= 64).then_some(user)
}

/// A room name the page may use.
fn valid_room(room: &str) -> bool {
    (1..=32).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Refuses a socket without a user (the client gets `connect_error`).
#[derive(Debug)]
struct NoUser;

impl std::fmt::Display for NoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a user name is needed (?user=...)")
    }
}

async fn need_user(socket: SocketRef) -> Result<(), NoUser> {
    user_of(&socket).map(|_| ()).ok_or(NoUser)
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

/// What the page shows about this server.
#[derive(Clone)]
struct Server {
    label: String,
    node: String,
}

/// A socket connected: tell rollcall before any await, and hook the rest.
fn on_connect(socket: SocketRef, presence: &Presence, server: &Server) {
    // The middleware let it through: it has a user.
    let user = user_of(&socket).unwrap_or_default();
    let status = query_param(&socket, "status")
        .filter(|s| STATUSES.contains(&s.as_str()))
        .unwrap_or_else(|| "online".into());
    let sid = socket.id.to_string();
    // Queued now, in order: a disconnect below can never overtake them,
    // and the data rides in the connect's write.
    log_refused("connect", presence.connect(&sid, Some(&user), socket.ns()));
    let data = json!({ "name": user, "status": status });
    log_refused("set data", presence.set_data(&sid, Some(&data)));

    let p = presence.clone();
    socket.on(
        "join",
        move |socket: SocketRef, Data::<String>(room), ack: AckSender| {
            let joined = valid_room(&room).then(|| {
                socket.join(room.clone());
                p.join(&socket.id.to_string(), &room)
            });
            async move {
                let ok = match joined {
                    Some(joined) => joined.await.is_ok(),
                    None => false,
                };
                ack.send(&json!({ "ok": ok })).ok();
            }
        },
    );
    let p = presence.clone();
    socket.on(
        "leave",
        move |socket: SocketRef, Data::<String>(room), ack: AckSender| {
            let left = valid_room(&room).then(|| {
                socket.leave(room.clone());
                p.leave(&socket.id.to_string(), &room)
            });
            async move {
                let ok = match left {
                    Some(left) => left.await.is_ok(),
                    None => false,
                };
                ack.send(&json!({ "ok": ok })).ok();
            }
        },
    );
    let p = presence.clone();
    socket.on(
        "status",
        move |socket: SocketRef, Data::<String>(status), ack: AckSender| {
            let set = STATUSES.contains(&status.as_str()).then(|| {
                let data = json!({ "name": user, "status": status });
                p.set_data(&socket.id.to_string(), Some(&data))
            });
            async move {
                let ok = match set {
                    Some(set) => set.await.is_ok(),
                    None => false,
                };
                ack.send(&json!({ "ok": ok })).ok();
            }
        },
    );
    let (p, server) = (presence.clone(), server.clone());
    socket.on("state", move |TryData::<Value>(ask), ack: AckSender| {
        let (p, server) = (p.clone(), server.clone());
        async move {
            let state = state(&p, &server, &ask.unwrap_or(Value::Null))
                .await
                .unwrap_or_else(|e| json!({ "error": e.to_string() }));
            ack.send(&state).ok();
        }
    });
    let p = presence.clone();
    socket.on_disconnect(move |socket: SocketRef| {
        log_refused("disconnect", p.disconnect(&socket.id.to_string()));
        async {}
    });
}

/// The answer to `state`: the users of each asked room (at most 50 rooms),
/// and the first 200 members of `room`, each with their data.
async fn state(p: &Presence, server: &Server, ask: &Value) -> Result<Value, rollcall_host::Error> {
    let mut counts = serde_json::Map::new();
    let rooms = ask.get("rooms").and_then(Value::as_array);
    for room in rooms
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .take(50)
    {
        if valid_room(room) {
            let users = p.users_count(Scope::room("/", room)).await?;
            counts.insert(room.to_owned(), users.into());
        }
    }
    let room = ask
        .get("room")
        .and_then(Value::as_str)
        .filter(|r| valid_room(r));
    let mut members = Vec::new();
    if let Some(room) = room {
        let page = p.members(Scope::room("/", room), 200, None).await?;
        for m in &page.members {
            members.push(json!({
                "userId": m.user,
                "sockets": m.sockets,
                "since": m.since,
                "data": m.data_values().unwrap_or_default(),
            }));
        }
    }
    Ok(json!({
        "server": { "label": server.label, "kind": "rust", "nodeId": server.node },
        "counts": counts,
        "room": room,
        "members": members,
    }))
}

/// A change of the feed as the Node server sends it to the page.
fn change_json(c: &Change) -> Value {
    let (namespace, room) = match &c.scope {
        Scope::Global => (None, None),
        Scope::Namespace { namespace } => (Some(namespace.as_str()), None),
        Scope::Room { namespace, room } => (Some(namespace.as_str()), Some(room.as_str())),
    };
    json!({
        "id": c.id,
        "type": c.kind.as_str(),
        "userId": c.user,
        "namespace": namespace,
        "room": room,
        "reason": c.reason.map(|r| r.as_str()),
        "data": c.data_values().ok().filter(|_| c.data.is_some()),
        "nodeId": c.node,
        "at": c.at,
    })
}

/// The body of a response: socketioxide's, or a whole file.
enum Reply<B> {
    Io(Pin<Box<B>>),
    Whole(Option<Bytes>),
}

impl<B> Body for Reply<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Reply::Io(body) => body.as_mut().poll_frame(cx).map_err(Into::into),
            Reply::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }
}

/// The page's files and `/config.json`.
struct Site {
    public: PathBuf,
    client_js: Option<PathBuf>,
    config: String,
}

impl Site {
    fn serve(&self, path: &str) -> Response<Option<Bytes>> {
        let (file, kind) = match path {
            "/" | "/index.html" => (Some(self.public.join("index.html")), "text/html"),
            "/app.js" => (Some(self.public.join("app.js")), "text/javascript"),
            "/style.css" => (Some(self.public.join("style.css")), "text/css"),
            "/socket.io/socket.io.js" => (self.client_js.clone(), "application/javascript"),
            "/config.json" => {
                return reply(StatusCode::OK, "application/json", self.config.clone());
            }
            _ => return reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        };
        match file.map(std::fs::read) {
            Some(Ok(bytes)) => reply(StatusCode::OK, kind, bytes),
            Some(Err(e)) => reply(StatusCode::NOT_FOUND, "text/plain", format!("{e}\n")),
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "start with --client-js FILE to serve the Socket.IO client\n",
            ),
        }
    }
}

fn reply(status: StatusCode, kind: &str, body: impl Into<Bytes>) -> Response<Option<Bytes>> {
    let mut res = Response::new(Some(body.into()));
    *res.status_mut() = status;
    let kind = format!("{kind}; charset=utf-8");
    if let Ok(value) = kind.parse() {
        res.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    res.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    res
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = options().map_err(|e| {
        eprintln!("who_is_online: {e}");
        std::process::exit(2)
    })?;
    let ms = Duration::from_millis;
    let mut builder = Presence::builder()
        .prefix(o.prefix)
        .ttl(ms(o.ttl_ms))
        .heartbeat(ms(o.heartbeat_ms.unwrap_or(o.ttl_ms / 4)))
        .reap_interval(ms(o.reap_ms.unwrap_or(o.ttl_ms / 4)))
        .grace(ms(o.grace_ms));
    if let Some(url) = o.redis {
        builder = builder.redis(url);
    }
    let presence = builder.start().await?;
    let server = Server {
        label: o.label.clone(),
        node: presence.node_id().to_owned(),
    };

    let (svc, io) = SocketIo::new_svc();
    {
        let (p, server) = (presence.clone(), server.clone());
        let handler = move |socket: SocketRef| {
            // Runs when the socket connects, before the returned future.
            on_connect(socket, &p, &server);
            async {}
        };
        io.ns("/", handler.with(need_user));
    }

    // Every change of the cluster goes to every page, which then asks for
    // the state it shows.
    let mut watch = presence.watch(None).await?;
    let feed_io = io.clone();
    let feed = tokio::spawn(async move {
        while let Some(change) = watch.next().await {
            match change {
                Ok(c) => {
                    if let Err(e) = feed_io.emit("presence", &change_json(&c)).await {
                        eprintln!("who_is_online: emit: {e}");
                    }
                }
                Err(e) => eprintln!("who_is_online: watch: {e}"),
            }
        }
    });

    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], o.port))).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let servers = if o.servers.is_empty() {
        vec![url.clone()]
    } else {
        o.servers
    };
    let site = Arc::new(Site {
        public: o.public,
        client_js: o.client_js,
        config: json!({ "label": o.label, "kind": "rust", "servers": servers }).to_string(),
    });
    println!("listening on {url}");
    println!("node {}", presence.node_id());

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let (svc, site) = (svc.clone(), site.clone());
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (svc, site) = (svc.clone(), site.clone());
                    async move {
                        let path = req.uri().path();
                        let engine = (path == "/socket.io" || path.starts_with("/socket.io/"))
                            && path != "/socket.io/socket.io.js";
                        if engine {
                            let res = svc.call(req).await?;
                            Ok(res.map(|b| Reply::Io(Box::pin(b))))
                        } else {
                            Ok::<_, std::convert::Infallible>(site.serve(path).map(Reply::Whole))
                        }
                    }
                });
                tokio::spawn(async move {
                    let conn = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    if let Err(e) = conn.await {
                        eprintln!("who_is_online: connection error: {e}");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    feed.abort();
    match presence.shutdown().await {
        Ok(()) => println!("presence closed"),
        Err(e) => eprintln!("who_is_online: shutdown: {e}"),
    }
    Ok(())
}
