//! The vocabulary routing reasons in: model families, API methods
//! ("endpoints") and API styles, and which family each endpoint serves.
//!
//! Facts here follow `shared/gemini-api.md`. Which *model* belongs to which
//! family is data (see [`crate::classify`]); which *method* serves which family
//! is the API's contract and lives in [`Endpoint::serves`].

use crate::config::{read_unit_enum, FieldError};
use crate::reader::Reader;
use std::fmt;

/// A model family: the set of models Google serves on the same methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Gemini and Gemma text/multimodal models (`generateContent`).
    Gemini,
    /// Image-output Gemini models (`gemini-*-image*`), on `generateContent`.
    GeminiImage,
    /// Imagen (`imagen-*`), on `:predict`.
    Imagen,
    /// Veo (`veo-*`), on `:predictLongRunning`.
    Veo,
    /// Embedding models, on `:embedContent` / `:batchEmbedContents`.
    Embedding,
    /// Attributed question answering (`aqa`), on `:generateAnswer`.
    Aqa,
}

impl Family {
    /// Every family, in documentation order.
    pub const ALL: [Family; 6] = [
        Family::Gemini,
        Family::GeminiImage,
        Family::Imagen,
        Family::Veo,
        Family::Embedding,
        Family::Aqa,
    ];

    /// The names used in configuration, headers and metric names, in the
    /// order of [`Family::ALL`] (declaration order).
    pub const NAMES: [&'static str; 6] = [
        "gemini",
        "gemini_image",
        "imagen",
        "veo",
        "embedding",
        "aqa",
    ];

    /// The name used in configuration, headers and metric names.
    pub fn as_str(self) -> &'static str {
        Family::NAMES[self as usize]
    }
}

impl Family {
    /// A family's name in configuration.
    pub(crate) fn read(r: &mut Reader<'_, '_>) -> Result<Family, FieldError> {
        read_unit_enum(r, &Family::NAMES).map(|i| Family::ALL[i])
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The API a request is written for, or that the filter routes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiStyle {
    /// The OpenAI-compatibility layer (`/v1beta/openai/...`), `Authorization: Bearer KEY`.
    Openai,
    /// The Gemini Developer API (`/v1beta/models/{m}:{method}`), `x-goog-api-key`.
    Native,
    /// Vertex AI (`/v1/projects/{p}/locations/{l}/publishers/{pub}/models/{m}:{method}`).
    Vertex,
}

impl ApiStyle {
    /// Every style, in declaration order.
    pub const ALL: [ApiStyle; 3] = [ApiStyle::Openai, ApiStyle::Native, ApiStyle::Vertex];
    /// The names used in configuration and documentation, in the same order.
    pub const NAMES: [&'static str; 3] = ["openai", "native", "vertex"];

    /// The name used in configuration and documentation.
    pub fn as_str(self) -> &'static str {
        ApiStyle::NAMES[self as usize]
    }
}

impl ApiStyle {
    /// A style's name in configuration.
    pub(crate) fn read(r: &mut Reader<'_, '_>) -> Result<ApiStyle, FieldError> {
        read_unit_enum(r, &ApiStyle::NAMES).map(|i| ApiStyle::ALL[i])
    }
}

/// One API method. OpenAI-compatibility operations and native methods are
/// distinct endpoints because they take different body shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// OpenAI `POST .../chat/completions`.
    ChatCompletions,
    /// OpenAI `POST .../images/generations`.
    ImagesGenerations,
    /// OpenAI `POST .../embeddings`.
    Embeddings,
    /// Native `:generateContent`.
    GenerateContent,
    /// Native `:streamGenerateContent`.
    StreamGenerateContent,
    /// Native `:countTokens`.
    CountTokens,
    /// Native `:embedContent`.
    EmbedContent,
    /// Native `:batchEmbedContents`.
    BatchEmbedContents,
    /// Native `:predict`.
    Predict,
    /// Native `:predictLongRunning`.
    PredictLongRunning,
    /// Native `:generateAnswer`.
    GenerateAnswer,
}

impl Endpoint {
    /// Every endpoint, in declaration order.
    pub const ALL: [Endpoint; 11] = [
        Endpoint::ChatCompletions,
        Endpoint::ImagesGenerations,
        Endpoint::Embeddings,
        Endpoint::GenerateContent,
        Endpoint::StreamGenerateContent,
        Endpoint::CountTokens,
        Endpoint::EmbedContent,
        Endpoint::BatchEmbedContents,
        Endpoint::Predict,
        Endpoint::PredictLongRunning,
        Endpoint::GenerateAnswer,
    ];

    /// The native method named after the `:` of a model path, if known.
    pub fn from_native_method(method: &str) -> Option<Endpoint> {
        Some(match method {
            "generateContent" => Endpoint::GenerateContent,
            "streamGenerateContent" => Endpoint::StreamGenerateContent,
            "countTokens" => Endpoint::CountTokens,
            "embedContent" => Endpoint::EmbedContent,
            "batchEmbedContents" => Endpoint::BatchEmbedContents,
            "predict" => Endpoint::Predict,
            "predictLongRunning" => Endpoint::PredictLongRunning,
            "generateAnswer" => Endpoint::GenerateAnswer,
            _ => return None,
        })
    }

    /// The OpenAI-compatibility operation a path ends in, if any.
    pub fn from_openai_path(path: &str) -> Option<Endpoint> {
        if path.ends_with("/chat/completions") {
            Some(Endpoint::ChatCompletions)
        } else if path.ends_with("/images/generations") {
            Some(Endpoint::ImagesGenerations)
        } else if path.ends_with("/embeddings") {
            Some(Endpoint::Embeddings)
        } else {
            None
        }
    }

    /// Whether this endpoint belongs to the OpenAI-compatibility layer.
    pub fn is_openai(self) -> bool {
        matches!(
            self,
            Endpoint::ChatCompletions | Endpoint::ImagesGenerations | Endpoint::Embeddings
        )
    }

    /// The path segment of the endpoint: `chat/completions` for OpenAI
    /// operations, the method name (`generateContent`) for native ones.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat/completions",
            Endpoint::ImagesGenerations => "images/generations",
            Endpoint::Embeddings => "embeddings",
            Endpoint::GenerateContent => "generateContent",
            Endpoint::StreamGenerateContent => "streamGenerateContent",
            Endpoint::CountTokens => "countTokens",
            Endpoint::EmbedContent => "embedContent",
            Endpoint::BatchEmbedContents => "batchEmbedContents",
            Endpoint::Predict => "predict",
            Endpoint::PredictLongRunning => "predictLongRunning",
            Endpoint::GenerateAnswer => "generateAnswer",
        }
    }

    /// Whether Google serves models of `family` on this endpoint.
    ///
    /// Image-output Gemini models are deliberately *not* served by chat
    /// completions here: the compatibility layer answers them with text only,
    /// so a chat client asking one for an image is routed to `generateContent`.
    pub fn serves(self, family: Family) -> bool {
        use Endpoint as E;
        use Family as F;
        match self {
            E::ChatCompletions => family == F::Gemini,
            E::ImagesGenerations => matches!(family, F::Imagen | F::GeminiImage),
            E::Embeddings | E::EmbedContent | E::BatchEmbedContents => family == F::Embedding,
            E::GenerateContent | E::StreamGenerateContent | E::CountTokens => {
                matches!(family, F::Gemini | F::GeminiImage)
            }
            E::Predict => family == F::Imagen,
            E::PredictLongRunning => family == F::Veo,
            E::GenerateAnswer => family == F::Aqa,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_method_names_round_trip() {
        for endpoint in Endpoint::ALL.into_iter().filter(|e| !e.is_openai()) {
            let method = endpoint.as_str();
            assert_eq!(
                Endpoint::from_native_method(method),
                Some(endpoint),
                "{method}"
            );
        }
        assert_eq!(Endpoint::from_native_method("batchGenerateContent"), None);
    }

    #[test]
    fn the_all_lists_follow_declaration_order() {
        for (i, family) in Family::ALL.into_iter().enumerate() {
            assert_eq!(family as usize, i, "{family:?}");
        }
        for (i, style) in ApiStyle::ALL.into_iter().enumerate() {
            assert_eq!(style as usize, i, "{style:?}");
        }
        for (i, endpoint) in Endpoint::ALL.into_iter().enumerate() {
            assert_eq!(endpoint as usize, i, "{endpoint:?}");
        }
    }

    #[test]
    fn every_family_is_served_somewhere_natively() {
        let native = [
            Endpoint::GenerateContent,
            Endpoint::Predict,
            Endpoint::PredictLongRunning,
            Endpoint::EmbedContent,
            Endpoint::GenerateAnswer,
        ];
        for family in Family::ALL {
            assert!(native.iter().any(|e| e.serves(family)), "{family}");
        }
    }
}
