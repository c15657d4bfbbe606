//! Enumerations that Salted CX spells in several ways.
//!
//! The documentation writes the same value as `MESSAGE`, `Message` or `Conversation Update`, and
//! the format is still changing, so enum values are matched case-insensitively with spaces, `_`
//! and `-` treated alike, and unknown values are kept (as `Other`) instead of being rejected.

/// Normalises a wire value for matching: upper case, with spaces and `-` turned into `_`.
pub fn normalise(value: &str) -> String {
    value.trim().chars().map(normalised).collect()
}

/// Whether `value` matches `wire` once both are normalised, without allocating (every enum value
/// of every turn goes through this).
pub fn matches(value: &str, wire: &str) -> bool {
    let value = value.trim();
    value.len() == wire.len()
        && value
            .chars()
            .zip(wire.chars())
            .all(|(a, b)| normalised(a) == normalised(b))
}

fn normalised(c: char) -> char {
    match c {
        ' ' | '-' => '_',
        c => c.to_ascii_uppercase(),
    }
}

/// Declares an enum with tolerant (de)serialisation: each known variant has its canonical wire
/// spelling, and any other value is kept verbatim in `Other(String)`.
#[macro_export]
macro_rules! tolerant_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as it was sent.
            Other(String),
        }

        impl $name {
            /// Parses a wire value tolerantly (case, spaces, `_` and `-` do not matter).
            pub fn parse(value: &str) -> Self {
                $( if $crate::tolerant::matches(value, $wire) { return Self::$variant; } )+
                Self::Other(value.to_string())
            }

            /// The canonical wire spelling (the original text for `Other`).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(value) => value.as_str(),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // Borrowed when the text has no escapes: no allocation for known values.
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(&text))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{matches, normalise};

    #[test]
    fn normalise_treats_case_spaces_underscores_and_dashes_alike() {
        assert_eq!(normalise("Conversation Update"), "CONVERSATION_UPDATE");
        assert_eq!(normalise("conversation-update"), "CONVERSATION_UPDATE");
        assert_eq!(normalise(" External Agent "), "EXTERNAL_AGENT");
    }

    #[test]
    fn matching_agrees_with_normalising() {
        for (value, wire) in [
            ("Conversation Update", "CONVERSATION_UPDATE"),
            ("conversation-update", "CONVERSATION_UPDATE"),
            (" External Agent ", "EXTERNAL_AGENT"),
            ("MESSAGE", "MESSAGE"),
        ] {
            assert!(matches(value, wire), "{value}");
            assert_eq!(normalise(value), wire);
        }
        assert!(!matches("MESSAGES", "MESSAGE"));
        assert!(!matches("MESSAG", "MESSAGE"));
        assert!(!matches("Ménage", "MENAGE"));
    }
}
