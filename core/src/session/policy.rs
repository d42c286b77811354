//! The one policy for inputs a tracker refuses, shared by every host: which
//! are ignored (the state already says so; a host's normal life produces
//! them) and which are refused (a bug in the caller).

use crate::tracker::InputError;

/// What became of an input the session was fed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an ignored input carries the reason a caller may want to hear"]
pub enum Fed {
    /// The tracker took it.
    Applied,
    /// Nothing changed, and nothing needed to: a duplicate connect after
    /// Socket.IO's connection state recovery, an event for a socket that
    /// is already gone, anything after shutdown. The session also reports
    /// it as a warning in its output.
    Ignored(InputError),
}

/// How the session treats one refusal of the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Redundant: [`Fed::Ignored`], with a warning.
    Ignore,
    /// A reply that is not of the shape its script gives: the tracker
    /// already counts the call as failed and heals with a re-assert; the
    /// session reports it as an `Event::StoreError`.
    StoreError,
    /// A caller's bug (a malformed id, a reply nobody waits for): an error
    /// for the caller; nothing changed.
    Refuse,
}

/// The policy itself: one match, so that a new [`InputError`] must be
/// placed here (the enum is non-exhaustive outside the crate only).
pub(crate) fn disposition(error: &InputError) -> Disposition {
    match error {
        InputError::DuplicateSocket { .. }
        | InputError::UnknownSocket { .. }
        | InputError::DuplicateClient { .. }
        | InputError::UnknownClient { .. }
        | InputError::Closed => Disposition::Ignore,
        InputError::BadReply { .. } => Disposition::StoreError,
        InputError::BadId(_) | InputError::BadData { .. } | InputError::UnknownToken { .. } => {
            Disposition::Refuse
        }
    }
}
