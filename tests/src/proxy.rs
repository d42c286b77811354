//! A small TCP proxy (tokio, on its own runtime thread): the stable address
//! of a managed Redis endpoint. The test can switch its target (failover),
//! cut every open connection, and freeze the traffic (data already read is
//! held, and dropped on a cut: a lagging replication link), both ways or
//! only Redis' replies (a call runs, its reply never arrives).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    port: u16,
    target: Arc<Mutex<SocketAddr>>,
    frozen: watch::Sender<bool>,
    replies: watch::Sender<bool>,
    /// Reads of replies that may still pass while replies are frozen.
    pass: Arc<AtomicUsize>,
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
        let (replies, _) = watch::channel(false);
        let (cut, _) = watch::channel(0u64);
        let pass = Arc::new(AtomicUsize::new(0));
        let (t, f, r, c) = (target.clone(), frozen.clone(), replies.clone(), cut.clone());
        let p = pass.clone();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((client, _)) = listener.accept().await {
                let to = *t.lock().unwrap_or_else(|p| p.into_inner());
                let (frozen, replies, cut) = (f.subscribe(), r.subscribe(), c.subscribe());
                let pass = p.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(to).await {
                        relay(client, server, frozen, (replies, pass), cut).await;
                    }
                });
            }
        });
        Proxy {
            port,
            target,
            frozen,
            replies,
            pass,
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

    /// Stops (`true`) or resumes (`false`) forwarding Redis' replies only:
    /// commands still reach Redis and run, their replies are held.
    pub fn freeze_replies(&self, frozen: bool) {
        self.replies.send_replace(frozen);
    }

    /// While replies are frozen, lets the next `reads` reads of replies
    /// (held or still to come, on any connection) through, then holds
    /// again: a node's call in flight gets its reply, its next call not.
    pub fn pass_replies(&self, reads: usize) {
        self.pass.fetch_add(reads, Ordering::SeqCst);
        // Wake the held pipes: they check the allowance.
        self.replies.send_modify(|_| {});
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    frozen: watch::Receiver<bool>,
    replies: (watch::Receiver<bool>, Arc<AtomicUsize>),
    cut: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::select! {
        _ = pipe(cr, sw, frozen.clone(), None, cut.clone()) => {}
        _ = pipe(sr, cw, frozen, Some(replies), cut) => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    mut only_this_way: Option<(watch::Receiver<bool>, Arc<AtomicUsize>)>,
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
        loop {
            let this_way = only_this_way.as_mut().is_some_and(|(r, pass)| {
                *r.borrow_and_update()
                    && pass
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_err()
            });
            if !*frozen.borrow_and_update() && !this_way {
                break;
            }
            let this_way_changed = async {
                match only_this_way.as_mut() {
                    Some((r, _)) => {
                        let _ = r.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = frozen.changed() => {}
                _ = this_way_changed => {}
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
