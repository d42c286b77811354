//! Per-socket presence data as `serde_json` values.
//!
//! The core carries a user's data as JSON texts (one object per socket with
//! data, in a stable order): [`rollcall_core::Member::data`],
//! [`Event::UserUpdated`]'s `data` and, for [`ChangeKind::Updated`],
//! [`Change::data`] (one JSON array). [`DataExt`] parses them for the
//! application, as values or as its own type.

use rollcall_core::{Change, ChangeKind, Event, Member};
use serde::de::DeserializeOwned;

/// The data a [`Member`], an [`Event::UserUpdated`] or an updated
/// [`Change`] carries, parsed: one object per socket of the user that has
/// data (the order of the texts). Empty for an event or change of another
/// kind, and for a user without data.
///
/// ```
/// use rollcall_host::{DataExt, Event};
/// let e = Event::UserUpdated {
///     user: "ann".into(),
///     data: vec![r#"{"status":"away"}"#.into()],
///     change_id: "i:1:0".into(),
/// };
/// assert_eq!(e.data_values().unwrap()[0]["status"], "away");
/// ```
pub trait DataExt {
    /// The objects parsed as `T`: the application's own type (a
    /// `#[derive(Deserialize)]` struct), or [`serde_json::Value`].
    fn data_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error>;

    /// The objects as [`serde_json::Value`]s (each an object).
    fn data_values(&self) -> Result<Vec<serde_json::Value>, serde_json::Error> {
        self.data_as()
    }
}

/// Parses JSON object texts, one value each.
pub fn parse_data<T: DeserializeOwned>(texts: &[String]) -> Result<Vec<T>, serde_json::Error> {
    texts.iter().map(|t| serde_json::from_str(t)).collect()
}

impl DataExt for Member {
    fn data_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        parse_data(&self.data)
    }
}

impl DataExt for Event {
    fn data_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        match self {
            Event::UserUpdated { data, .. } => parse_data(data),
            _ => Ok(Vec::new()),
        }
    }
}

impl DataExt for Change {
    fn data_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, serde_json::Error> {
        match (&self.kind, &self.data) {
            (ChangeKind::Updated, Some(array)) => serde_json::from_str(array),
            _ => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollcall_core::Scope;
    use serde_json::json;

    #[test]
    fn members_events_and_changes_parse_alike() {
        let texts = vec![r#"{"a":1}"#.to_owned(), r#"{"b":[true]}"#.to_owned()];
        let want = vec![json!({"a": 1}), json!({"b": [true]})];
        let member = Member {
            user: "ann".into(),
            sockets: 2,
            since: 5,
            data: texts.clone(),
        };
        assert_eq!(member.data_values().unwrap(), want);
        let event = Event::UserUpdated {
            user: "ann".into(),
            data: texts,
            change_id: "i:1:0".into(),
        };
        assert_eq!(event.data_values().unwrap(), want);
        let mut change = Change {
            id: "1-0".into(),
            kind: ChangeKind::Updated,
            user: "ann".into(),
            scope: Scope::Global,
            reason: None,
            node: "a".into(),
            at: 1,
            change_id: "i:1:0".into(),
            data: Some(r#"[{"a":1},{"b":[true]}]"#.into()),
        };
        assert_eq!(change.data_values().unwrap(), want);
        change.kind = ChangeKind::Online;
        assert!(change.data_values().unwrap().is_empty());
        assert!(Event::Closed.data_values().unwrap().is_empty());
    }

    #[test]
    fn data_parses_into_the_apps_own_type() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Status {
            status: String,
        }
        let member = Member {
            user: "ann".into(),
            sockets: 1,
            since: 0,
            data: vec![r#"{"status":"away","extra":1}"#.into()],
        };
        let got: Vec<Status> = member.data_as().unwrap();
        assert_eq!(
            got,
            [Status {
                status: "away".into()
            }]
        );
        let bad = Member {
            data: vec!["nope".into()],
            ..member
        };
        assert!(bad.data_values().is_err());
    }
}
