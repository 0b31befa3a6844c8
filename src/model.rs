//! Model name validation: the model goes into a URL path, so only a single
//! safe path segment is accepted.

use std::fmt;

/// The collection a model id lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// `models/{id}`: base models.
    Models,
    /// `tunedModels/{id}`: tuned models.
    TunedModels,
}

impl Collection {
    /// The path segment of the collection.
    pub fn as_str(self) -> &'static str {
        match self {
            Collection::Models => "models",
            Collection::TunedModels => "tunedModels",
        }
    }
}

/// A validated model name: safe to put into a path as `{collection}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    /// Where the model lives.
    pub collection: Collection,
    /// The bare id (`gemini-2.5-flash`), one path segment of `[A-Za-z0-9._-]`.
    pub id: String,
}

/// Why a model name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The `model` field is not a JSON string.
    NotAString,
    /// The name is empty (after any `models/` prefix).
    Empty,
    /// The name is longer than allowed.
    TooLong { len: usize, max: usize },
    /// The name has a character outside `[A-Za-z0-9._-]`.
    BadCharacter { ch: char, at: usize },
    /// The name is `.` or `..`.
    DotSegment,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::NotAString => f.write_str("the model must be a string"),
            ModelError::Empty => f.write_str("the model name is empty"),
            ModelError::TooLong { len, max } => {
                write!(f, "the model name is {len} characters long; at most {max} are allowed")
            }
            ModelError::BadCharacter { ch, at } => write!(
                f,
                "the model name has the character {} at position {at}; only letters, digits, '.', '-' and '_' are allowed",
                ch.escape_default()
            ),
            ModelError::DotSegment => f.write_str("the model name may not be '.' or '..'"),
        }
    }
}

impl std::error::Error for ModelError {}

impl ModelName {
    /// Parses `models/ID`, `tunedModels/ID` or a bare `ID`.
    pub fn parse(raw: &str, max_len: usize) -> Result<ModelName, ModelError> {
        let (collection, id) = if let Some(id) = raw.strip_prefix("models/") {
            (Collection::Models, id)
        } else if let Some(id) = raw.strip_prefix("tunedModels/") {
            (Collection::TunedModels, id)
        } else {
            (Collection::Models, raw)
        };
        Ok(ModelName {
            collection,
            id: validate_id(id, max_len)?.to_owned(),
        })
    }

    /// Parses the id segment of a path whose collection is already known.
    pub fn from_path(
        collection: Collection,
        id: &str,
        max_len: usize,
    ) -> Result<ModelName, ModelError> {
        Ok(ModelName {
            collection,
            id: validate_id(id, max_len)?.to_owned(),
        })
    }

    /// `models/ID` or `tunedModels/ID`, as it goes into a native path.
    pub fn resource(&self) -> String {
        crate::route::concat(&[self.collection.as_str(), "/", &self.id])
    }
}

fn validate_id(id: &str, max_len: usize) -> Result<&str, ModelError> {
    if id.is_empty() {
        return Err(ModelError::Empty);
    }
    if let Some((at, ch)) = id
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return Err(ModelError::BadCharacter { ch, at });
    }
    if id.len() > max_len {
        return Err(ModelError::TooLong {
            len: id.len(),
            max: max_len,
        });
    }
    if id == "." || id == ".." {
        return Err(ModelError::DotSegment);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_model_names() {
        let long = "a".repeat(129);
        type Want = Result<(Collection, &'static str), ModelError>;
        let cases: Vec<(&str, &str, Want)> = vec![
            (
                "bare",
                "gemini-2.5-flash",
                Ok((Collection::Models, "gemini-2.5-flash")),
            ),
            (
                "models prefix",
                "models/imagen-4.0-generate-001",
                Ok((Collection::Models, "imagen-4.0-generate-001")),
            ),
            (
                "tuned",
                "tunedModels/my_model-1",
                Ok((Collection::TunedModels, "my_model-1")),
            ),
            ("empty", "", Err(ModelError::Empty)),
            ("prefix only", "models/", Err(ModelError::Empty)),
            ("dot dot", "..", Err(ModelError::DotSegment)),
            ("dot", "models/.", Err(ModelError::DotSegment)),
            (
                "traversal",
                "../secret",
                Err(ModelError::BadCharacter { ch: '/', at: 2 }),
            ),
            (
                "slash",
                "a/b",
                Err(ModelError::BadCharacter { ch: '/', at: 1 }),
            ),
            (
                "query",
                "m?x=1",
                Err(ModelError::BadCharacter { ch: '?', at: 1 }),
            ),
            (
                "fragment",
                "m#f",
                Err(ModelError::BadCharacter { ch: '#', at: 1 }),
            ),
            (
                "percent",
                "m%2F..",
                Err(ModelError::BadCharacter { ch: '%', at: 1 }),
            ),
            (
                "space",
                "gemini pro",
                Err(ModelError::BadCharacter { ch: ' ', at: 6 }),
            ),
            (
                "colon",
                "m:predict",
                Err(ModelError::BadCharacter { ch: ':', at: 1 }),
            ),
            (
                "newline",
                "m\n",
                Err(ModelError::BadCharacter { ch: '\n', at: 1 }),
            ),
            (
                "non-ascii",
                "gémini",
                Err(ModelError::BadCharacter { ch: 'é', at: 1 }),
            ),
            (
                "too long",
                long.as_str(),
                Err(ModelError::TooLong { len: 129, max: 128 }),
            ),
        ];
        for (name, raw, want) in cases {
            let got = ModelName::parse(raw, 128).map(|m| (m.collection, m.id));
            let want = want.map(|(c, id)| (c, id.to_owned()));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn error_messages_escape_control_characters() {
        let err = ModelName::parse("a\u{7}", 128).unwrap_err();
        assert!(err.to_string().contains("\\u{7}"), "{err}");
    }
}
