//! A small TCP proxy (tokio, on its own runtime thread): the stable address
//! of a managed Redis endpoint. The test can switch its target (failover),
//! cut every open connection, and freeze the traffic (data already read is
//! held, and dropped on a cut: a lagging replication link).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    port: u16,
    target: Arc<Mutex<SocketAddr>>,
    frozen: watch::Sender<bool>,
    cut: watch::Sender<u64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target`.
    pub fn start(target: u16) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("proxy runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().expect("proxy addr").port();
        let target = Arc::new(Mutex::new(SocketAddr::from(([127, 0, 0, 1], target))));
        let (frozen, _) = watch::channel(false);
        let (cut, _) = watch::channel(0u64);
        let (t, f, c) = (target.clone(), frozen.clone(), cut.clone());
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((client, _)) = listener.accept().await {
                let to = *t.lock().unwrap_or_else(|p| p.into_inner());
                let (frozen, cut) = (f.subscribe(), c.subscribe());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(to).await {
                        relay(client, server, frozen, cut).await;
                    }
                });
            }
        });
        Proxy {
            port,
            target,
            frozen,
            cut,
            runtime: Some(runtime),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// New connections go to `127.0.0.1:target` from now on.
    pub fn switch(&self, target: u16) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) =
            SocketAddr::from(([127, 0, 0, 1], target));
    }

    /// Closes every connection open now (data held by a freeze is lost).
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    /// Stops (`true`) or resumes (`false`) forwarding, both ways.
    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    frozen: watch::Receiver<bool>,
    cut: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pipe(cr, sw, frozen.clone(), cut.clone()) => {}
        _ = pipe(sr, cw, frozen, cut) => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    mut cut: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            n = from.read(&mut buf) => n,
            _ = cut.changed() => return,
        };
        let n = match n {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *frozen.borrow_and_update() {
            tokio::select! {
                _ = frozen.changed() => {}
                _ = cut.changed() => return,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
