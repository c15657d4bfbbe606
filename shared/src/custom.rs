//! Custom data: the free-form JSON object Salted CX stores for Your Logic on the customer and the
//! conversation, limited to 1 kB serialised. [`CustomData`] can only be built within the limit.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The largest serialised size of a `custom` object Salted CX accepts, in bytes.
pub const CUSTOM_LIMIT_BYTES: usize = 1024;

/// A `custom` object that is known to serialise to at most [`CUSTOM_LIMIT_BYTES`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct CustomData(Map<String, Value>);

/// The object would not fit in Salted CX's 1 kB limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("custom data is {size} bytes serialised, over the {limit}-byte limit")]
pub struct CustomTooLarge {
    pub size: usize,
    pub limit: usize,
}

impl CustomData {
    /// Wraps `map` if it serialises to at most 1 kB.
    pub fn new(map: Map<String, Value>) -> Result<Self, CustomTooLarge> {
        let size = serialised_size(&map);
        if size > CUSTOM_LIMIT_BYTES {
            return Err(CustomTooLarge {
                size,
                limit: CUSTOM_LIMIT_BYTES,
            });
        }
        Ok(Self(map))
    }

    /// The wrapped object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Gives the object back.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }

    /// Serialised size in bytes.
    pub fn size(&self) -> usize {
        serialised_size(&self.0)
    }
}

impl<'de> Deserialize<'de> for CustomData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        CustomData::new(map).map_err(serde::de::Error::custom)
    }
}

fn serialised_size(map: &Map<String, Value>) -> usize {
    serde_json::to_vec(map)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_data_within_one_kilobyte_is_accepted() {
        let Value::Object(map) = json!({"phase": "greeting", "misses": 2}) else {
            panic!("not an object")
        };
        let data = CustomData::new(map).expect("small object fits");
        assert!(data.size() < 100);
    }

    #[test]
    fn custom_data_over_one_kilobyte_is_refused_with_its_size() {
        let Value::Object(map) = json!({"blob": "x".repeat(1100)}) else {
            panic!("not an object")
        };
        let err = CustomData::new(map).expect_err("too large");
        assert!(err.size > CUSTOM_LIMIT_BYTES);
        assert!(err.to_string().contains("1024-byte limit"));
    }

    #[test]
    fn deserialising_oversized_custom_data_fails() {
        let text = format!("{{\"blob\":\"{}\"}}", "y".repeat(2000));
        assert!(serde_json::from_str::<CustomData>(&text).is_err());
    }
}
