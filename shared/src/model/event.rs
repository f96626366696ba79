use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::check_text;
use super::webhook::{check_event_type, is_name_byte};
use crate::clock::{self, DAY, Millis};
use crate::error::FieldError;

/// The largest event accepted, as posted.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;
/// How far ahead `deliver_at` may be.
pub const MAX_SCHEDULE_AHEAD: Millis = 7 * DAY;
/// The most times the delivery function hides a scheduled message before it is due
/// (hops of up to 12 hours across seven days, and the last hop's re-send).
pub const MAX_SCHEDULE_AHEAD_HOPS: u32 = 7 * 2 + 2;

/// An event as posted. Only `type` is required.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventInput {
    pub id: Option<String>,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub timestamp: Option<String>,
    pub data: Option<Value>,
    #[serde(default, deserialize_with = "super::object_only::optional")]
    pub user: Option<User>,
    pub deliver_at: Option<String>,
    pub channel: Option<String>,
}

/// The user an event concerns, for personalised templates and locale choice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(with = "clock::rfc3339")]
    pub timestamp: Millis,
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "clock::rfc3339::option"
    )]
    pub deliver_at: Option<Millis>,
    /// The channel it belongs to (seed 004's `channel_id`): webhooks that list channels
    /// receive only events of those.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// The most characters of a channel name.
pub const MAX_CHANNEL_BYTES: usize = 128;

/// A channel name: 1–128 of `A-Z a-z 0-9 . _ - :`.
pub(crate) fn check_channel(field: &str, name: &str) -> Result<(), FieldError> {
    let ok = !name.is_empty() && name.len() <= MAX_CHANNEL_BYTES && name.bytes().all(is_name_byte);
    if ok {
        Ok(())
    } else {
        Err(FieldError::invalid(
            field,
            "a channel is 1 to 128 of A-Z, a-z, 0-9, '.', '_', '-', ':'",
        ))
    }
}

/// An event id is a path segment of `GET /events/{id}`, so it is URL-safe as it stands:
/// 1–256 of `A-Z a-z 0-9 . _ - :`, starting with a letter or digit (so never `.` or `..`,
/// and nothing a client must percent-encode, which clients get wrong).
fn check_event_id(id: &str) -> Result<(), FieldError> {
    let ok = id.len() <= 256
        && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && id.bytes().all(is_name_byte);
    if ok {
        Ok(())
    } else {
        Err(FieldError::invalid(
            "id",
            "an event id is 1 to 256 of A-Z, a-z, 0-9, '.', '_', '-', ':', starting with a letter or digit",
        ))
    }
}

/// A `?type=` filter: an event type, as events name them.
pub fn check_type_filter(t: &str) -> Result<(), FieldError> {
    check_event_type("type", t)
}

impl Event {
    /// Whether `other` says what this event says: its type, data, user and channel. Its
    /// time is left out (an event posted again without a `timestamp` is stamped anew,
    /// and a `deliver_at` may have passed between the two), so a retry of one request
    /// is the same event.
    pub fn says_the_same_as(&self, other: &Event) -> bool {
        self.event_type == other.event_type
            && self.data == other.data
            && self.user == other.user
            && self.channel == other.channel
    }

    /// Validates a posted event; `new_id` supplies an id when the client gave none.
    pub fn from_input(
        input: EventInput,
        now: Millis,
        new_id: impl FnOnce() -> String,
    ) -> Result<Event, FieldError> {
        let event_type = input
            .event_type
            .ok_or_else(|| FieldError::new("missing_field", "type", "is required"))?;
        check_event_type("type", &event_type)?;
        let id = match input.id {
            Some(id) => {
                check_event_id(&id)?;
                id
            }
            None => new_id(),
        };
        let timestamp = match input.timestamp {
            Some(ts) => clock::parse_rfc3339(&ts)
                .ok_or_else(|| FieldError::invalid("timestamp", "must be an RFC 3339 timestamp"))?,
            None => now,
        };
        let data = match input.data {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => return Err(FieldError::invalid("data", "must be a JSON object")),
        };
        if let Some(user) = &input.user {
            if let Some(uid) = &user.id {
                check_text("user.id", uid, 256)?;
            }
            if let Some(locale) = &user.locale {
                check_text("user.locale", locale, 35)?;
            }
        }
        let deliver_at = match input.deliver_at {
            None => None,
            Some(s) => {
                let at = clock::parse_rfc3339(&s).ok_or_else(|| {
                    FieldError::invalid("deliver_at", "must be an RFC 3339 timestamp")
                })?;
                if at > now + MAX_SCHEDULE_AHEAD {
                    return Err(FieldError::invalid(
                        "deliver_at",
                        "must be at most 7 days ahead",
                    ));
                }
                // A time in the past means "now".
                (at > now).then_some(at)
            }
        };
        if let Some(channel) = &input.channel {
            check_channel("channel", channel)?;
        }
        Ok(Event {
            id,
            event_type,
            timestamp,
            data,
            user: input.user,
            deliver_at,
            channel: input.channel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::decode_json;

    fn parse(json: &str) -> Result<Event, FieldError> {
        Event::from_input(decode_json(json.as_bytes())?, 1_000_000, || "ev_gen".into())
    }

    #[test]
    fn event_ids_are_url_safe_as_they_stand() {
        let parse = |id: &str| {
            Event::from_input(
                EventInput {
                    id: Some(id.to_string()),
                    event_type: Some("a".into()),
                    ..EventInput::default()
                },
                0,
                || unreachable!(),
            )
        };
        for ok in ["evt_1", "order:42:created", "5f0c-9a.b", &"x".repeat(256)] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "-x",
            "%F2%9E",
            "a/b",
            "a b",
            "a?b",
            "é",
            &"x".repeat(257),
        ] {
            assert_eq!(parse(bad).unwrap_err().field, "id", "{bad}");
        }
    }

    #[test]
    fn a_user_given_as_an_array_is_refused() {
        let err =
            crate::model::decode_json::<EventInput>(br#"{"type": "a", "user": [null, null]}"#)
                .unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("invalid_field", "user"));
        let input =
            crate::model::decode_json::<EventInput>(br#"{"type": "a", "user": null}"#).unwrap();
        assert!(input.user.is_none());
    }

    #[test]
    fn only_type_is_required() {
        let ev = parse(r#"{"type": "order.placed"}"#).unwrap();
        assert_eq!(ev.id, "ev_gen");
        assert_eq!(ev.timestamp, 1_000_000);
        assert!(ev.data.is_empty());
        assert_eq!(parse("{}").unwrap_err().field, "type");
    }

    #[test]
    fn rejects_bad_fields_by_name() {
        let cases = [
            (r#"{"type": "a b"}"#, "type"),
            (r#"{"type": "a", "data": [1]}"#, "data"),
            (r#"{"type": "a", "data": "x"}"#, "data"),
            (r#"{"type": "a", "timestamp": "noon"}"#, "timestamp"),
            (
                r#"{"type": "a", "deliver_at": "2999-01-01T00:00:00Z"}"#,
                "deliver_at",
            ),
            (r#"{"type": "a", "user": {"id": 5}}"#, "user.id"),
            (r#"{"type": "a", "user": {"name": "x"}}"#, "user.name"),
            (r#"{"type": "a", "id": ""}"#, "id"),
            (r#"{"type": "a", "colour": 1}"#, "colour"),
            (r#"{"type": "a", "channel": ""}"#, "channel"),
            (r#"{"type": "a", "channel": "a b"}"#, "channel"),
            (r#"{"type": "a", "channel": 7}"#, "channel"),
            (
                r#"{"type": "a", "data": {"id": 123456789012345678901234567890}}"#,
                "data.id",
            ),
            (
                r#"{"type": "a", "user": {"attributes": {"n": [1, 0.30000000000000000001]}}}"#,
                "user.attributes.n[1]",
            ),
        ];
        for (json, field) in cases {
            assert_eq!(parse(json).unwrap_err().field, field, "{json}");
        }
    }

    #[test]
    fn deliver_at_in_the_past_means_now() {
        let ev = parse(r#"{"type": "a", "deliver_at": "1970-01-01T00:00:01Z"}"#).unwrap();
        assert_eq!(ev.deliver_at, None);
    }
}
