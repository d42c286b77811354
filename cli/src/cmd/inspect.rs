//! `rollcall inspect`: the registered nodes, the counts per scope and the
//! invariant check of a live keyspace.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use rollcall_core::model::{DumpEntry, DumpValue};
use rollcall_core::{Config, Field, KeyKind, Schema, Scope, invariants};
use serde::Serialize;

use super::table;
use rollcall_host::dump;
use rollcall_host::store::RedisStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Redis to inspect, e.g. redis://127.0.0.1:6379
    #[arg(long, value_name = "URL")]
    redis: String,
    /// The application's key prefix (keys are `{prefix}:...`).
    #[arg(long, default_value = "rollcall")]
    prefix: String,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Refresh every second until Ctrl-C (then exit 0); with --json, one
    /// JSON object per line.
    #[arg(long)]
    watch: bool,
}

/// `writeln!` to a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

#[derive(Debug, Serialize)]
struct Report {
    prefix: String,
    nodes: Vec<NodeRow>,
    /// Incarnations retired or found dead, whose reap is under way.
    reaping: Vec<String>,
    clients: i64,
    scopes: Vec<ScopeRow>,
    violations: Vec<String>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct NodeRow {
    incarnation: String,
    /// Milliseconds left on the lease (negative: expired, not yet reaped).
    ttl_ms: i64,
    /// This incarnation's own fields.
    fields: usize,
}

#[derive(Debug, Serialize)]
struct ScopeRow {
    scope: Scope,
    sockets: i64,
    users: usize,
}

pub async fn run(args: Args) -> ExitCode {
    let check = Config {
        prefix: args.prefix.clone(),
        ..Config::default()
    };
    if let Err(e) = check.validate() {
        eprintln!("rollcall inspect: invalid --prefix: {e}");
        return ExitCode::from(2);
    }
    let store = match RedisStore::open(&args.redis, Duration::from_secs(5)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rollcall inspect: {e}");
            return ExitCode::from(2);
        }
    };
    let schema = Schema::new(&args.prefix);
    if args.watch {
        return watch(&args, &store, &schema).await;
    }
    let (report, _) = match snapshot(&args.prefix, &store, &schema).await {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rollcall inspect: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("rollcall inspect: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", text(&report));
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// One look at the keyspace: the report, and the Redis time it was taken.
async fn snapshot(
    prefix: &str,
    store: &RedisStore,
    schema: &Schema,
) -> Result<(Report, i64), rollcall_host::Error> {
    let entries = dump::dump(store, schema).await?;
    let now = dump::redis_time_ms(store).await?;
    Ok((report(prefix, schema, &entries, now), now))
}

/// How often `--watch` refreshes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// `--watch`: a fresh report every second until SIGINT (Ctrl-C) or SIGTERM,
/// then exit 0. On a terminal each frame replaces the previous one; to a
/// pipe or file, frames follow one another, each under a header line (with
/// `--json`, one compact JSON object per line). A failed refresh (Redis
/// restarting, say) is shown and retried at the next tick.
async fn watch(args: &Args, store: &RedisStore, schema: &Schema) -> ExitCode {
    let mut stop = match Stop::new() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rollcall inspect: cannot catch Ctrl-C: {e}");
            return ExitCode::from(2);
        }
    };
    let tty = std::io::stdout().is_terminal();
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut frame_no: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.wait() => return ExitCode::SUCCESS,
            _ = ticks.tick() => {}
        }
        frame_no += 1;
        let shot = tokio::select! {
            _ = stop.wait() => return ExitCode::SUCCESS,
            shot = snapshot(&args.prefix, store, schema) => shot,
        };
        let frame = match (&shot, args.json) {
            (Ok((report, _)), true) => match serde_json::to_string(report) {
                Ok(s) => format!("{s}\n"),
                Err(e) => {
                    eprintln!("rollcall inspect: {e}");
                    return ExitCode::from(2);
                }
            },
            (Err(e), true) => {
                eprintln!("rollcall inspect: {e} (retrying)");
                continue;
            }
            (Ok((report, now)), false) => {
                format!("{}\n{}", watch_header(frame_no, Some(*now)), text(report))
            }
            (Err(e), false) => format!(
                "{}\nrollcall inspect: {e}\n(retrying every {} s)\n",
                watch_header(frame_no, None),
                WATCH_EVERY.as_secs()
            ),
        };
        let mut out = std::io::stdout().lock();
        let written = if tty && !args.json {
            // Home, clear the screen, then the whole frame in one write.
            write!(out, "\x1b[H\x1b[2J{frame}")
        } else if frame_no > 1 && !args.json {
            write!(out, "\n{frame}")
        } else {
            write!(out, "{frame}")
        };
        if written.and_then(|()| out.flush()).is_err() {
            // The reader went away (a closed pipe): nothing left to show.
            return ExitCode::SUCCESS;
        }
    }
}

/// The first line of a `--watch` frame: its number and the Redis time
/// (UTC) of its snapshot.
fn watch_header(frame_no: u64, redis_now_ms: Option<i64>) -> String {
    let at = match redis_now_ms {
        Some(ms) => {
            let day_s = ms.div_euclid(1000).rem_euclid(86_400);
            format!(
                "{:02}:{:02}:{:02} UTC",
                day_s / 3600,
                day_s / 60 % 60,
                day_s % 60
            )
        }
        None => "Redis did not answer".to_owned(),
    };
    format!(
        "rollcall inspect --watch: frame {frame_no}, {at} (every {} s, Ctrl-C to stop)",
        WATCH_EVERY.as_secs()
    )
}

/// SIGINT (Ctrl-C) or SIGTERM, caught from the start of the watch.
struct Stop {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    #[cfg(unix)]
    fn new() -> std::io::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Stop> {
        Ok(Stop {})
    }

    /// Resolves at the first signal (and at once after it).
    #[cfg(unix)]
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn report(prefix: &str, schema: &Schema, entries: &[DumpEntry], now: i64) -> Report {
    let mut nodes = Vec::new();
    let mut reaping = Vec::new();
    let mut own_sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut clients = 0;
    let mut sockets: BTreeMap<Scope, i64> = BTreeMap::new();
    let mut users: BTreeMap<Scope, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for entry in entries {
        match (schema.parse_key(&entry.key), &entry.value) {
            (Some(KeyKind::Live), DumpValue::Zset(members)) => {
                for (inc, deadline) in members {
                    nodes.push(NodeRow {
                        incarnation: inc.clone(),
                        ttl_ms: deadline - now,
                        fields: 0,
                    });
                }
            }
            (Some(KeyKind::Dead), DumpValue::Zset(members)) => {
                reaping.extend(members.iter().map(|(m, _)| m.clone()));
            }
            (Some(KeyKind::Counts), DumpValue::Hash(fields)) => {
                for (f, v) in fields {
                    let v: i64 = v.parse().unwrap_or(0);
                    match Field::decode(f) {
                        Some(Field::Clients) => clients = v,
                        Some(Field::Sockets(scope)) => {
                            sockets.insert(scope, v);
                        }
                        _ => {}
                    }
                }
            }
            (Some(KeyKind::Users { scope_id }), DumpValue::Hash(fields)) => {
                if let Some(scope) = Scope::decode(&scope_id) {
                    users.insert(scope, fields.len());
                }
            }
            (Some(KeyKind::Own { incarnation }), DumpValue::Zset(members)) => {
                own_sizes.insert(incarnation, members.len());
            }
            (_, DumpValue::String(s)) if s.starts_with('<') && s.ends_with('>') => {
                violations.push(format!(
                    "key {:?} is a {}, a type rollcall never writes",
                    entry.key,
                    &s[1..s.len() - 1]
                ));
            }
            _ => {}
        }
    }
    for node in &mut nodes {
        node.fields = own_sizes.get(&node.incarnation).copied().unwrap_or(0);
    }
    violations.extend(invariants::check(entries, schema));
    let mut scopes: BTreeMap<Scope, ScopeRow> = BTreeMap::new();
    fn row(scopes: &mut BTreeMap<Scope, ScopeRow>, scope: Scope) -> &mut ScopeRow {
        scopes.entry(scope.clone()).or_insert(ScopeRow {
            scope,
            sockets: 0,
            users: 0,
        })
    }
    for (scope, n) in sockets {
        row(&mut scopes, scope).sockets = n;
    }
    for (scope, n) in users {
        row(&mut scopes, scope).users = n;
    }
    Report {
        prefix: prefix.to_owned(),
        nodes,
        reaping,
        clients,
        scopes: scopes.into_values().collect(),
        ok: violations.is_empty(),
        violations,
    }
}

/// How a scope reads in a table.
pub fn scope_label(scope: &Scope) -> String {
    match scope {
        Scope::Global => "global".to_owned(),
        Scope::Namespace { namespace } => format!("namespace {namespace}"),
        Scope::Room { namespace, room } => format!("room {namespace} {room}"),
    }
}

/// The report as the tables and lines printed to a terminal.
fn text(r: &Report) -> String {
    let mut out = String::new();
    outln!(out, "prefix {:?}", r.prefix);
    out.push('\n');
    if r.nodes.is_empty() {
        outln!(out, "no registered nodes");
    } else {
        let rows: Vec<Vec<String>> = r
            .nodes
            .iter()
            .map(|n| {
                vec![
                    n.incarnation.clone(),
                    if n.ttl_ms >= 0 {
                        format!("{} ms", n.ttl_ms)
                    } else {
                        format!("expired {} ms ago", -n.ttl_ms)
                    },
                    n.fields.to_string(),
                ]
            })
            .collect();
        out.push_str(&table::render(
            &["node (incarnation)", "lease left", "own fields"],
            &rows,
        ));
    }
    if !r.reaping.is_empty() {
        outln!(out, "being reaped: {}", r.reaping.join(", "));
    }
    out.push('\n');
    outln!(out, "clients (engine connections): {}", r.clients);
    let rows: Vec<Vec<String>> = r
        .scopes
        .iter()
        .map(|s| {
            vec![
                scope_label(&s.scope),
                s.sockets.to_string(),
                s.users.to_string(),
            ]
        })
        .collect();
    out.push_str(&table::render(&["scope", "sockets", "users"], &rows));
    out.push('\n');
    if r.ok {
        outln!(out, "invariants: ok");
    } else {
        outln!(out, "invariants: {} violation(s)", r.violations.len());
        for v in &r.violations {
            outln!(out, "  - {v}");
        }
    }
    out
}
