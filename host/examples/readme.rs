// The README's Rust example, verbatim (tests/tests/readme.rs checks both).
use rollcall_host::{Event, Presence, Scope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let presence = Presence::builder().redis(url).start().await?; // no .redis(..): one process
    let mut events = presence.subscribe(); // UserOnline, UserOffline { reason }, ...
    presence.connect("sid-1", Some("alice"), "/").await?;
    presence.join("sid-1", "lobby").await?;
    let online = presence.users_count(Scope::room("/", "lobby")).await?;
    println!("{online} users in the lobby");
    if let Event::UserOnline { user, .. } = events.recv().await? {
        println!("online {user}");
    }
    presence.shutdown().await?;
    Ok(())
}
