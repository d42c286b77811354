//! The errors of the host, each saying what went wrong and what to do.

use std::fmt;
use std::time::Duration;

use rollcall_core::config::ConfigError;
use rollcall_core::query::BadAnswer;
use rollcall_core::tracker::InputError;

/// What can go wrong when starting, feeding or asking a [`crate::Presence`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL does not parse.
    BadUrl {
        /// The URL, without its password.
        url: String,
        /// What the parser said.
        message: String,
    },
    /// Redis could not be reached (refused, timed out, connection lost).
    Unreachable {
        /// The URL, without its password.
        url: String,
        /// What the connection said.
        message: String,
    },
    /// Redis refused the credentials (or wants some and got none).
    AuthFailed {
        /// The URL, without its password.
        url: String,
        /// What Redis said.
        message: String,
    },
    /// Redis refused to load or run rollcall's scripts (scripting disabled,
    /// an ACL without EVAL/EVALSHA, a script error).
    ScriptRejected {
        /// Which script (or `rollcall` for all of them).
        script: String,
        /// What Redis said.
        message: String,
    },
    /// The node's first registration failed (the store went away after
    /// connecting, or answered in a shape rollcall does not expect). Nothing
    /// of this node is in the store.
    Register {
        /// What the store said.
        message: String,
    },
    /// Any other failure of a Redis call (a read, a dump).
    Store {
        /// What Redis said.
        message: String,
    },
    /// An option is invalid.
    Config(ConfigError),
    /// The tracker refused an input (unknown socket, bad id, data that is
    /// no object or longer than `max_data_bytes`, shut down).
    BadInput(InputError),
    /// A read came back in a shape rollcall does not expect.
    BadAnswer(BadAnswer),
    /// Something did not finish in time.
    Timeout {
        /// What was waited for.
        what: String,
        /// How long it was waited for.
        after: Duration,
    },
    /// A trace file could not be created or written.
    Trace {
        /// The file.
        path: std::path::PathBuf,
        /// What the file system said.
        message: String,
    },
    /// An argument of a call is malformed (a `watch` from that is no
    /// change id, say).
    BadArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The presence was shut down or killed; it takes no more inputs.
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadUrl { url, message } => write!(
                f,
                "invalid Redis URL {url:?}: {message} (expected redis://[user:password@]host:port[/db])"
            ),
            Error::Unreachable { url, message } => write!(
                f,
                "Redis at {url} is unreachable: {message} (is redis-server running there, and the host and port right?)"
            ),
            Error::AuthFailed { url, message } => write!(
                f,
                "Redis at {url} refused the credentials: {message} (put user and password in the URL: redis://user:password@host:port)"
            ),
            Error::ScriptRejected { script, message } => write!(
                f,
                "Redis rejected rollcall's {script} script: {message} (rollcall needs Lua scripting: EVAL, EVALSHA and SCRIPT LOAD must be allowed for this user)"
            ),
            Error::Register { message } => {
                write!(f, "could not register with the store: {message}")
            }
            Error::Store { message } => write!(f, "a Redis call failed: {message}"),
            Error::Config(e) => write!(f, "invalid option {e}"),
            Error::BadInput(e) => write!(f, "input refused: {e}"),
            Error::BadAnswer(e) => e.fmt(f),
            Error::Timeout { what, after } => write!(
                f,
                "{what} did not finish within {} ms (is Redis up and answering?)",
                after.as_millis()
            ),
            Error::Trace { path, message } => write!(
                f,
                "cannot record the trace to {}: {message} (does the directory exist and is it writable?)",
                path.display()
            ),
            Error::BadArgument { name, message } => write!(f, "invalid {name}: {message}"),
            Error::Closed => f.write_str("this presence is shut down; start a new one"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::BadInput(e) => Some(e),
            Error::BadAnswer(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Error {
        Error::Config(e)
    }
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Error {
        Error::BadInput(e)
    }
}

impl From<BadAnswer> for Error {
    fn from(e: BadAnswer) -> Error {
        Error::BadAnswer(e)
    }
}

/// Sorts a redis-rs error into the variant that tells the user what to do.
/// `url` must already be redacted.
pub fn classify(err: &redis::RedisError, url: &str) -> Error {
    use redis::{ErrorKind, ServerErrorKind};
    let message = err.to_string();
    let code = err.code().unwrap_or("");
    if err.kind() == ErrorKind::AuthenticationFailed
        || matches!(code, "NOAUTH" | "WRONGPASS")
        || message.contains("NOAUTH")
        || message.contains("WRONGPASS")
    {
        return Error::AuthFailed {
            url: url.to_owned(),
            message,
        };
    }
    if err.is_io_error()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_connection_dropped()
    {
        return Error::Unreachable {
            url: url.to_owned(),
            message,
        };
    }
    if err.kind() == ErrorKind::InvalidClientConfig {
        return Error::BadUrl {
            url: url.to_owned(),
            message,
        };
    }
    if err.kind() == ErrorKind::Server(ServerErrorKind::NoPerm) {
        return Error::ScriptRejected {
            script: "rollcall".into(),
            message,
        };
    }
    Error::Store { message }
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let host_start = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..host_start].rfind('@') else {
        return url.to_owned();
    };
    let user_info = &rest[..at];
    let user = user_info.split(':').next().unwrap_or("");
    let hidden = if user_info.contains(':') {
        format!("{user}:***")
    } else {
        "***".to_owned()
    };
    format!("{}{}@{}", &url[..scheme_end + 3], hidden, &rest[at + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("redis://u:secret@h:1/0"),
            "redis://u:***@h:1/0".to_owned()
        );
        assert_eq!(redact("redis://:secret@h:1"), "redis://:***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }
}
