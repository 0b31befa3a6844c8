//! Plugin configuration: read once with the crate's pull reader
//! ([`crate::reader`]) into `RawConfig` (unknown fields refused), then
//! compiled and validated into `Config`, with errors that name the field. The JSON Schema in `schema/config.schema.json` documents
//! the same fields.

use crate::classify::{Classifier, Glob, GlobError, Rule, RuleSource};
use crate::endpoint::{ApiStyle, Family};
use crate::lifecycle::{Lifecycle, Notice, RawRow, RowError};
use crate::model::ModelName;
use crate::reader::{document, ReadError, Reader, Str};
use crate::signatures::{Restore, Settings};
use crate::translate::{ImageMessageFormat, TranslateOptions};
use std::fmt;

/// Default `max_body_bytes`: room for a chat request with inline images.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest accepted `max_body_bytes` (1 GiB).
pub const MAX_MAX_BODY_BYTES: usize = 1024 * 1024 * 1024;
/// Default `max_model_length`.
pub const DEFAULT_MAX_MODEL_LENGTH: usize = 128;
/// Largest accepted `max_model_length`.
pub const MAX_MAX_MODEL_LENGTH: usize = 256;
/// Default `native_version`.
pub const DEFAULT_NATIVE_VERSION: &str = "v1beta";
/// Default `openai_base_path`.
pub const DEFAULT_OPENAI_BASE_PATH: &str = "/v1beta/openai";

/// The configuration as written, before validation: read by [`Shape::read`]
/// with the shape after it, unknown fields refused, the `default`
/// ones empty when absent.
#[derive(Debug, Default)]
pub struct RawConfig {
    api_style: Option<ApiStyle>,
    family_styles: FamilyStyles,
    rules: Vec<RawRule>,
    builtin_rules: Option<bool>,
    default_family: Option<Family>,
    native_version: Option<String>,
    openai_base_path: Option<String>,
    openai_images_families: Vec<Family>,
    vertex: Option<RawVertex>,
    upstream: Option<String>,
    annotate_statuses: Option<Vec<u16>>,
    max_body_bytes: Option<usize>,
    max_model_length: Option<usize>,
    image_message_format: Option<ImageMessageFormat>,
    lifecycle: Vec<RawRow>,
    builtin_lifecycle: Option<bool>,
    migrate: Option<MigratePolicy>,
    migrate_always: Vec<String>,
    task_model: Option<String>,
    task_prefixes: Option<Vec<String>>,
    live_catalogue: Option<bool>,
    thought_signatures: Option<RawSignatures>,
    route_removes_accept_encoding: Option<bool>,
}

impl RawConfig {
    const SHAPE: Shape = Shape {
        name: "RawConfig",
        fields: &[
            "api_style",
            "family_styles",
            "rules",
            "builtin_rules",
            "default_family",
            "native_version",
            "openai_base_path",
            "openai_images_families",
            "vertex",
            "upstream",
            "annotate_statuses",
            "max_body_bytes",
            "max_model_length",
            "image_message_format",
            "lifecycle",
            "builtin_lifecycle",
            "migrate",
            "migrate_always",
            "task_model",
            "task_prefixes",
            "live_catalogue",
            "thought_signatures",
            "route_removes_accept_encoding",
        ],
        required: 0,
        // family_styles, rules, openai_images_families, lifecycle, migrate_always.
        defaulted: 1 << 1 | 1 << 2 | 1 << 7 | 1 << 14 | 1 << 17,
        deny_unknown: true,
    };

    /// Reads the configuration document.
    #[cfg(test)]
    pub(crate) fn read(r: &mut Reader<'_, '_>) -> Result<RawConfig, FieldError> {
        let mut c = RawConfig::default();
        c.read_fields(r)?;
        Ok(c)
    }

    /// Reads the configuration document into `self`, the default.
    fn read_fields(&mut self, r: &mut Reader<'_, '_>) -> Result<(), FieldError> {
        let c = self;
        RawConfig::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => c.api_style = read_opt(r, ApiStyle::read)?,
                1 => c.family_styles = FamilyStyles::read(r)?,
                2 => read_seq_into(r, &mut c.rules, RawRule::read)?,
                3 => read_opt_bool(r, &mut c.builtin_rules)?,
                4 => c.default_family = read_opt(r, Family::read)?,
                5 => read_opt_string(r, &mut c.native_version)?,
                6 => read_opt_string(r, &mut c.openai_base_path)?,
                7 => read_seq_into(r, &mut c.openai_images_families, Family::read)?,
                8 => RawVertex::read_into(r, &mut c.vertex)?,
                9 => read_opt_string(r, &mut c.upstream)?,
                10 => {
                    // At most `u16::MAX`: the cast keeps the value.
                    let status = |r: &mut Reader<'_, '_>| {
                        read_uint(r, "u16", u16::MAX.into()).map(|n| n as u16)
                    };
                    c.annotate_statuses = read_opt(r, |r| read_seq(r, status))?;
                }
                11 => read_opt_usize(r, &mut c.max_body_bytes)?,
                12 => read_opt_usize(r, &mut c.max_model_length)?,
                13 => c.image_message_format = read_opt(r, ImageMessageFormat::read)?,
                14 => read_seq_into(r, &mut c.lifecycle, RawRow::read)?,
                15 => read_opt_bool(r, &mut c.builtin_lifecycle)?,
                16 => c.migrate = read_opt(r, MigratePolicy::read)?,
                17 => read_seq_into(r, &mut c.migrate_always, read_string)?,
                18 => read_opt_string(r, &mut c.task_model)?,
                19 => c.task_prefixes = read_opt(r, read_strings)?,
                20 => read_opt_bool(r, &mut c.live_catalogue)?,
                21 => RawSignatures::read_into(r, &mut c.thought_signatures)?,
                _ => read_opt_bool(r, &mut c.route_removes_accept_encoding)?,
            }
            Ok(())
        })
    }
}

/// A `usize`: at most `usize::MAX`, so `u32::MAX` in the module (as serde
/// reads one).
fn read_usize(r: &mut Reader<'_, '_>) -> Result<usize, FieldError> {
    let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
    let n = read_uint(r, "usize", max)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// `thought_signatures` as written.
#[derive(Debug, Default, Clone, Copy)]
pub struct RawSignatures {
    restore: Option<Restore>,
    cache_entries: Option<u32>,
    max_signature_bytes: Option<usize>,
}

impl RawSignatures {
    const SHAPE: Shape = Shape {
        name: "RawSignatures",
        fields: &["restore", "cache_entries", "max_signature_bytes"],
        required: 0,
        defaulted: 0,
        deny_unknown: true,
    };

    /// Reads `thought_signatures` (unless it is `null`) into `slot`, which
    /// is `None`.
    fn read_into(
        r: &mut Reader<'_, '_>,
        slot: &mut Option<RawSignatures>,
    ) -> Result<(), FieldError> {
        if r.null() {
            return Ok(());
        }
        let s = slot.get_or_insert_with(RawSignatures::default);
        RawSignatures::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => s.restore = read_opt(r, Restore::read)?,
                1 => {
                    let n = read_opt(r, |r| read_uint(r, "u32", u32::MAX.into()))?;
                    s.cache_entries = n.map(|n| n as u32);
                }
                _ => read_opt_usize(r, &mut s.max_signature_bytes)?,
            }
            Ok(())
        })
    }
}

/// `family_styles`: the style set for each family, if any. A JSON object
/// read as serde reads a `BTreeMap<Family, ApiStyle>` (a repeated family
/// keeps its last style), kept as one slot per family.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct FamilyStyles([Option<ApiStyle>; Family::ALL.len()]);

impl FamilyStyles {
    /// The style set for `family`.
    pub fn get(&self, family: Family) -> Option<ApiStyle> {
        self.0[family as usize]
    }

    /// How many families have a style.
    pub fn len(&self) -> usize {
        self.0.iter().flatten().count()
    }

    /// Whether no family has a style.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// As the map it is written as: `{Imagen: Vertex}`.
impl fmt::Debug for FamilyStyles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = Family::ALL.iter().zip(self.0);
        f.debug_map()
            .entries(set.filter_map(|(family, style)| Some((family, style?))))
            .finish()
    }
}

impl FamilyStyles {
    /// A JSON object of family -> style.
    fn read(r: &mut Reader<'_, '_>) -> Result<FamilyStyles, FieldError> {
        if r.peek() != Some(b'{') {
            return Err(invalid_type(r, "a map"));
        }
        let mut styles = FamilyStyles::default();
        r.begin_object()?;
        let mut read = 0;
        while let Some(key) = r.next_key(read)? {
            read += 1;
            let family = Family::ALL[variant_index(key, &Family::NAMES)?];
            styles.0[family as usize] = Some(ApiStyle::read(r)?);
        }
        Ok(styles)
    }
}

/// Largest accepted `thought_signatures.cache_entries`.
pub const MAX_SIGNATURE_ENTRIES: u32 = 65_536;
/// Largest accepted `thought_signatures.max_signature_bytes` (1 MiB).
pub const MAX_SIGNATURE_BYTES: usize = 1024 * 1024;

/// Default `task_prefixes`: how Open WebUI's background-task templates
/// (chat title, tags, follow-up suggestions ...) begin.
pub const DEFAULT_TASK_PREFIXES: &[&str] = &["### Task:"];

/// When a request for a model the lifecycle table knows goes to its
/// replacement instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MigratePolicy {
    /// Never: the request goes to the model asked for.
    Never,
    /// Once the model's shutdown date has passed (by the host's clock).
    #[default]
    AfterShutdown,
}

impl MigratePolicy {
    /// Every policy, in declaration order.
    pub const ALL: [MigratePolicy; 2] = [MigratePolicy::Never, MigratePolicy::AfterShutdown];
    /// Their names in configuration, in the same order.
    pub const NAMES: [&'static str; 2] = ["never", "after_shutdown"];
}

impl MigratePolicy {
    fn read(r: &mut Reader<'_, '_>) -> Result<MigratePolicy, FieldError> {
        read_unit_enum(r, &MigratePolicy::NAMES).map(|i| MigratePolicy::ALL[i])
    }
}

#[derive(Debug)]
struct RawRule {
    pattern: String,
    family: Family,
}

/// Only for [`RawRule::read`]: both fields are required, so no rule is ever
/// left with these values.
impl Default for RawRule {
    fn default() -> RawRule {
        RawRule {
            pattern: String::new(),
            family: Family::Gemini,
        }
    }
}

impl RawRule {
    const SHAPE: Shape = Shape {
        name: "RawRule",
        fields: &["match", "family"],
        required: 0b11,
        defaulted: 0,
        deny_unknown: true,
    };

    fn read(r: &mut Reader<'_, '_>) -> Result<RawRule, FieldError> {
        let mut rule = RawRule::default();
        RawRule::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => rule.pattern = read_string(r)?,
                _ => rule.family = Family::read(r)?,
            }
            Ok(())
        })?;
        Ok(rule)
    }
}

#[derive(Debug, Default)]
struct RawVertex {
    project: String,
    location: String,
    publisher: Option<String>,
    version: Option<String>,
}

impl RawVertex {
    const SHAPE: Shape = Shape {
        name: "RawVertex",
        fields: &["project", "location", "publisher", "version"],
        required: 0b11,
        defaulted: 0,
        deny_unknown: true,
    };

    /// Reads `vertex` (unless it is `null`) into `slot`, which is `None`.
    fn read_into(r: &mut Reader<'_, '_>, slot: &mut Option<RawVertex>) -> Result<(), FieldError> {
        if r.null() {
            return Ok(());
        }
        let v = slot.get_or_insert_with(RawVertex::default);
        RawVertex::SHAPE.read(r, &mut |r, index| {
            match index {
                0 => v.project = read_string(r)?,
                1 => v.location = read_string(r)?,
                2 => read_opt_string(r, &mut v.publisher)?,
                _ => read_opt_string(r, &mut v.version)?,
            }
            Ok(())
        })
    }
}

/// Vertex AI path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vertex {
    /// `projects/{project}`.
    pub project: String,
    /// `locations/{location}`.
    pub location: String,
    /// `publishers/{publisher}`, `google` by default.
    pub publisher: String,
    /// API version, `v1` by default.
    pub version: String,
}

/// The validated configuration every request shares.
#[derive(Debug, Clone)]
pub struct Config {
    api_style: ApiStyle,
    family_styles: FamilyStyles,
    /// Model id -> family.
    pub classifier: Classifier,
    /// Version in native paths the filter writes.
    pub native_version: String,
    /// Prefix of compat paths the filter writes for native clients.
    pub openai_base_path: String,
    openai_images_families: Vec<Family>,
    /// Vertex AI path parameters, present when any style is Vertex.
    pub vertex: Option<Vertex>,
    /// `host[:port]` to set as `:authority`, from `upstream`.
    pub authority: Option<String>,
    /// Retired fields the configuration still sets, for a warning in the log.
    pub retired: Vec<&'static str>,
    /// Bodies above this are not inspected.
    pub max_body_bytes: usize,
    /// Longest accepted model id.
    pub max_model_length: usize,
    /// Translation choices.
    pub translate: TranslateOptions,
    /// Model shutdowns and replacements.
    pub lifecycle: Lifecycle,
    /// When requests go to a replacement.
    pub migrate: MigratePolicy,
    /// Models sent to their replacement even before their shutdown.
    migrate_always: Vec<Glob>,
    /// The text model that serves background-task prompts sent to an image
    /// model; `None`: the filter answers them itself, empty.
    pub task_model: Option<ModelName>,
    /// How a background-task prompt begins; empty turns recognition off.
    pub task_prefixes: crate::scan::Prefixes,
    /// Read the live model catalogue after an upstream 404.
    pub live_catalogue: bool,
    /// Thought signatures remembered and put back.
    pub signatures: Settings,
    /// The route removes `accept-encoding` from the requests the filter
    /// sees (`request_headers_to_remove`), so the filter leaves it: a
    /// request header the filter changes makes Envoy match the route
    /// again (see [`crate::flow::Routed::header_ops`]).
    pub route_removes_accept_encoding: bool,
}

/// Why a configuration was refused. Each variant names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Not JSON, or a field of the wrong type or name (the message, in
    /// serde_json's wording, names it).
    Parse(String),
    /// `rules[i].match` is not a valid pattern.
    Rule { index: usize, source: GlobError },
    /// A field has an impossible value.
    Invalid { field: &'static str, why: String },
    /// A `lifecycle` row (or the built-in table) is invalid.
    Lifecycle(RowError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Parse(msg) => write!(f, "configuration: {msg}"),
            ConfigError::Rule { index, source } => {
                write!(f, "configuration: rules[{index}].match: {source}")
            }
            ConfigError::Invalid { field, why } => write!(f, "configuration: {field}: {why}"),
            ConfigError::Lifecycle(e) => write!(f, "configuration: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A [`ConfigError`] while the configuration is compiled: boxed, so each
/// step's `Result` is a pointer wide.
type Refusal = Box<ConfigError>;

/// `field` has an impossible value: `why`. (One copy, not one per caller.)
#[inline(never)]
fn invalid(field: &'static str, why: &str) -> Refusal {
    invalid_because(field, why.to_owned())
}

/// [`invalid`] with a message made for the value.
fn invalid_because(field: &'static str, why: String) -> Refusal {
    Box::new(ConfigError::Invalid { field, why })
}

/// `field` is outside `1..=max`.
#[inline(never)]
fn out_of_range(field: &'static str, max: usize) -> Refusal {
    invalid_because(field, format!("must be between 1 and {max}"))
}

impl Config {
    /// Parses and validates the plugin configuration; empty means defaults.
    pub fn from_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
        let mut raw = RawConfig::default();
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            parse_with(bytes, &mut |r| raw.read_fields(r)).map_err(ConfigError::Parse)?;
        }
        Config::try_from(raw)
    }

    /// The style a family's misrouted requests are sent to.
    pub fn style_for(&self, family: Family) -> ApiStyle {
        self.family_styles.get(family).unwrap_or(self.api_style)
    }

    /// A one-line summary for the log when the configuration is accepted.
    pub fn summary(&self) -> String {
        format!(
            "api_style={} family_styles={} rules={} upstream={} max_body_bytes={}",
            self.api_style.as_str(),
            self.family_styles.len(),
            self.classifier.len(),
            self.authority.as_deref().unwrap_or("(unchanged)"),
            self.max_body_bytes,
        )
    }

    /// The style `family_styles` sets explicitly for a family, if any. An
    /// explicit style moves even requests whose endpoint serves the family.
    pub fn forced_style(&self, family: Family) -> Option<ApiStyle> {
        self.family_styles.get(family)
    }

    /// Whether the compat `images/generations` endpoint is trusted to serve `family`.
    pub fn openai_images_serves(&self, family: Family) -> bool {
        self.openai_images_families.contains(&family)
    }

    /// Whether a chat prompt is a chat UI's background task (title, tags,
    /// follow-ups), by its beginning.
    pub fn is_task_prompt(&self, prompt: &str) -> bool {
        let prompt = prompt.trim_start();
        self.task_prefixes
            .as_slice()
            .iter()
            .any(|p| prompt.starts_with(p.as_str()))
    }

    /// The model a request for `model` is sent to instead, if any: its
    /// replacement once it is shut down (unless `migrate` is `never`), or
    /// at once when `migrate_always` lists it.
    pub fn migration_target(&self, model: &str, notice: &Notice) -> Option<ModelName> {
        let replacement = notice.replacement.as_deref()?;
        let due = match self.migrate {
            MigratePolicy::Never => false,
            MigratePolicy::AfterShutdown => notice.shut_down,
        } || self.migrate_always.iter().any(|g| g.matches(model));
        if !due || replacement == model {
            return None;
        }
        ModelName::parse(replacement, self.max_model_length).ok()
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(mut raw: RawConfig) -> Result<Config, ConfigError> {
        Config::compile(&mut raw).map_err(|e| *e)
    }
}

impl Config {
    /// Checks `raw` field by field; the first invalid field, in this order,
    /// is the one reported. `raw` is only read until every check has passed
    /// (then the lists the `Config` keeps are taken out of it), so a
    /// refusal drops it whole, in one place.
    fn compile(raw: &mut RawConfig) -> Result<Config, Refusal> {
        let api_style = raw.api_style.unwrap_or(ApiStyle::Native);

        let mut rules = Vec::with_capacity(raw.rules.len());
        for (index, rule) in raw.rules.iter().enumerate() {
            let pattern = Glob::new(&rule.pattern)
                .map_err(|source| Box::new(ConfigError::Rule { index, source }))?;
            rules.push(Rule {
                pattern,
                family: rule.family,
                source: RuleSource::Config(index),
            });
        }

        let native_version = raw
            .native_version
            .as_deref()
            .unwrap_or(DEFAULT_NATIVE_VERSION);
        if !matches!(native_version, "v1" | "v1beta" | "v1alpha") {
            return Err(invalid(
                "native_version",
                "must be one of v1, v1beta, v1alpha",
            ));
        }

        let openai_base_path = raw
            .openai_base_path
            .as_deref()
            .unwrap_or(DEFAULT_OPENAI_BASE_PATH);
        let openai_base_path = validate_base_path(openai_base_path)?;

        let uses_vertex =
            api_style == ApiStyle::Vertex || raw.family_styles.0.contains(&Some(ApiStyle::Vertex));
        let vertex = match &raw.vertex {
            Some(v) => Some(compile_vertex(v)?),
            None if uses_vertex => {
                return Err(invalid(
                    "vertex",
                    "is required when api_style or family_styles selects vertex",
                ))
            }
            None => None,
        };

        let authority = raw.upstream.as_deref().map(parse_upstream).transpose()?;

        // Retired: every 4xx and 5xx of a routed request is rewritten now.
        // Still accepted (and checked) so existing configurations load.
        let annotate_statuses = raw.annotate_statuses.as_deref().unwrap_or_default();
        if let Some(bad) = annotate_statuses.iter().find(|s| !(400..=599).contains(*s)) {
            return Err(invalid_because(
                "annotate_statuses",
                format!("{bad} is not an error status (400-599)"),
            ));
        }

        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if !(1..=MAX_MAX_BODY_BYTES).contains(&max_body_bytes) {
            return Err(out_of_range("max_body_bytes", MAX_MAX_BODY_BYTES));
        }
        let max_model_length = raw.max_model_length.unwrap_or(DEFAULT_MAX_MODEL_LENGTH);
        if !(1..=MAX_MAX_MODEL_LENGTH).contains(&max_model_length) {
            return Err(out_of_range("max_model_length", MAX_MAX_MODEL_LENGTH));
        }

        let lifecycle = Lifecycle::new(&raw.lifecycle, raw.builtin_lifecycle.unwrap_or(true))
            .map_err(|e| Box::new(ConfigError::Lifecycle(e)))?;
        let migrate_always = compile_globs(&raw.migrate_always)
            .map_err(|e| invalid_because("migrate_always", e.to_string()))?;
        let task_model = raw
            .task_model
            .as_deref()
            .map(|m| ModelName::parse(m, max_model_length))
            .transpose()
            .map_err(|e| invalid_because("task_model", e.to_string()))?;
        if let Some(list) = &raw.task_prefixes {
            if list.iter().any(|p| p.trim().is_empty()) {
                return Err(invalid("task_prefixes", "an entry is empty"));
            }
        }
        let signatures = signature_settings(raw.thought_signatures.unwrap_or_default())?;

        // Nothing below fails: the rest is copied out of `raw`.
        let classifier = Classifier::new(
            rules,
            raw.builtin_rules.unwrap_or(true),
            raw.default_family.unwrap_or(Family::Gemini),
        );
        let mut retired = Vec::new();
        if raw.annotate_statuses.is_some() {
            retired.push("annotate_statuses");
        }
        Ok(Config {
            api_style,
            family_styles: raw.family_styles,
            classifier,
            native_version: native_version.to_owned(),
            openai_base_path: openai_base_path.to_owned(),
            openai_images_families: std::mem::take(&mut raw.openai_images_families),
            vertex,
            authority,
            retired,
            max_body_bytes,
            max_model_length,
            translate: TranslateOptions {
                image_format: raw.image_message_format.unwrap_or_default(),
            },
            lifecycle,
            migrate: raw.migrate.unwrap_or_default(),
            migrate_always,
            task_model,
            task_prefixes: crate::scan::Prefixes::new(match raw.task_prefixes.take() {
                Some(list) => list,
                None => DEFAULT_TASK_PREFIXES
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
            }),
            live_catalogue: raw.live_catalogue.unwrap_or(true),
            signatures,
            route_removes_accept_encoding: raw.route_removes_accept_encoding.unwrap_or(false),
        })
    }
}

/// Every pattern compiled, or the first error.
fn compile_globs(patterns: &[String]) -> Result<Vec<Glob>, GlobError> {
    let mut globs = Vec::with_capacity(patterns.len());
    for pattern in patterns {
        globs.push(Glob::new(pattern)?);
    }
    Ok(globs)
}

fn signature_settings(raw: RawSignatures) -> Result<Settings, Refusal> {
    let defaults = Settings::default();
    let entries = raw.cache_entries.unwrap_or(defaults.entries);
    if !(1..=MAX_SIGNATURE_ENTRIES).contains(&entries) {
        return Err(out_of_range(
            "thought_signatures.cache_entries",
            usize::try_from(MAX_SIGNATURE_ENTRIES).unwrap_or(usize::MAX),
        ));
    }
    let max_bytes = raw.max_signature_bytes.unwrap_or(defaults.max_bytes);
    if !(1..=MAX_SIGNATURE_BYTES).contains(&max_bytes) {
        return Err(out_of_range(
            "thought_signatures.max_signature_bytes",
            MAX_SIGNATURE_BYTES,
        ));
    }
    Ok(Settings {
        restore: raw.restore.unwrap_or(defaults.restore),
        entries,
        max_bytes,
    })
}

/// A byte of a path segment: ASCII letters, digits, `.`, `-` and `_` (a
/// byte of a non-ASCII character is none of them).
fn is_segment_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

fn validate_base_path(path: &str) -> Result<&str, Refusal> {
    let trimmed = path.trim_end_matches('/');
    let ok = trimmed.strip_prefix('/').is_some_and(|segments| {
        segments.as_bytes().split(|&b| b == b'/').all(|seg| {
            !seg.is_empty()
                && seg != b"."
                && seg != b".."
                && seg.iter().all(|&b| is_segment_byte(b))
        })
    });
    if ok {
        Ok(trimmed)
    } else {
        Err(invalid(
            "openai_base_path",
            "must be an absolute path of segments made of letters, digits, '.', '-' and '_'",
        ))
    }
}

fn compile_vertex(raw: &RawVertex) -> Result<Vertex, Refusal> {
    let segment = |field: &'static str, value: &str| {
        if !value.is_empty() && value.bytes().all(is_segment_byte) && value != "." && value != ".."
        {
            Ok(value.to_owned())
        } else {
            Err(invalid(
                field,
                "must be one path segment of letters, digits, '.', '-' and '_'",
            ))
        }
    };
    Ok(Vertex {
        project: segment("vertex.project", &raw.project)?,
        location: segment("vertex.location", &raw.location)?,
        publisher: segment(
            "vertex.publisher",
            raw.publisher.as_deref().unwrap_or("google"),
        )?,
        version: segment("vertex.version", raw.version.as_deref().unwrap_or("v1"))?,
    })
}

/// `https://host[:port]` -> `host[:port]`, refusing paths, credentials and
/// other schemes so the value can only ever be an authority. The host is
/// lowercased and a port equal to the scheme's default is dropped, as a URL
/// parser would; a host is ASCII letters, digits, `.` and `-` (an
/// internationalised name in its `xn--` form), or an IPv6 literal in `[]`.
fn parse_upstream(value: &str) -> Result<String, Refusal> {
    const SHAPE: &str = "must be scheme://host[:port] without a path or query";
    let bad = |why: &str| Err(invalid("upstream", why));
    let Some((scheme, rest)) = value.split_once("://") else {
        return bad(SHAPE);
    };
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return bad("the scheme must be http or https");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('@') {
        return bad("must not carry credentials");
    }
    if authority.bytes().any(|b| matches!(b, b'/' | b'?' | b'#')) {
        return bad(SHAPE);
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let Some((addr, after)) = v6.split_once(']') else {
                return bad(SHAPE);
            };
            let ok = !addr.is_empty()
                && addr.contains(':')
                && addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !ok {
                return bad("has an invalid IPv6 address");
            }
            let port = match after {
                "" => None,
                p => match p.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return bad(SHAPE),
                },
            };
            // The address in its brackets.
            let bracketed = authority.get(..addr.len() + 2).unwrap_or(authority);
            (bracketed, port)
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                // No empty label, unless the name is absolute (ends in `.`).
                && (host.ends_with('.')
                    || !(host.starts_with('.') || host.as_bytes().windows(2).any(|w| w == b"..")));
            if !ok {
                return bad(
                    "has no valid host (ASCII letters, digits, '.' and '-'; IDNA names in their xn-- form)",
                );
            }
            (host, port)
        }
    };
    let host = host.to_ascii_lowercase();
    let Some(p) = port else {
        return Ok(host);
    };
    let port: u16 = match p.parse() {
        Ok(n) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return bad("has an invalid port"),
    };
    Ok(if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    })
}

// Reading the raw structs.
//
// The configuration (and the built-in lifecycle table, and a catalogue
// page) is read with the crate's pull reader, not serde: one reader for
// every struct, described by a [`Shape`], and one for every unit enum,
// described by its names. They accept what `#[derive(Deserialize)]` with
// `serde_json` accepts (a struct as an object, or as an array of its fields
// in order; an enum as `"name"` or `{"name": null}`), and their messages
// use serde's wording (tests compare them with the derive's).

/// Why a document could not be read: serde's wording, and the byte offset.
/// Boxed: a `Result` carrying it is then a pointer wide, so every `?` of
/// the readers passes one word on, not the whole error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError(Box<Failure>);

/// What a [`FieldError`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    msg: String,
    at: usize,
    /// From the reader's grammar checks (then an error at the end of the
    /// input is an early end).
    grammar: bool,
}

impl FieldError {
    fn new(msg: String, at: usize) -> FieldError {
        FieldError(Box::new(Failure {
            msg,
            at,
            grammar: false,
        }))
    }
}

impl From<ReadError> for FieldError {
    fn from(e: ReadError) -> FieldError {
        FieldError(Box::new(Failure {
            msg: e.what.to_owned(),
            at: e.at,
            grammar: true,
        }))
    }
}

/// Reads `buf` as one JSON document with `read`; an error is a message in
/// `serde_json`'s form, `what at line L column C`, the column that of the
/// offending token's first byte (a key's, after its quote; serde_json's
/// column is after the token).
pub(crate) fn parse_document<'a, T>(
    buf: &'a [u8],
    mut read: impl FnMut(&mut Reader<'a, '_>) -> Result<T, FieldError>,
) -> Result<T, String> {
    let mut value = None;
    parse_with(buf, &mut |r| {
        value = Some(read(r)?);
        Ok(())
    })?;
    value.ok_or_else(|| "expected a value".to_owned())
}

/// [`parse_document`]'s work, with a `dyn` callback: one copy in the
/// module, whatever the document's type.
#[inline(never)]
fn parse_with<'a>(
    buf: &'a [u8],
    read: &mut dyn FnMut(&mut Reader<'a, '_>) -> Result<(), FieldError>,
) -> Result<(), String> {
    let mut failed = None;
    let result = document(buf, |r| {
        read(r).map_err(|e| {
            let at = e.0.at;
            failed = Some(e);
            ReadError { what: "", at }
        })
    });
    result.map_err(|e| {
        let e = failed.unwrap_or_else(|| e.into()).0;
        let at = e.at.min(buf.len());
        let msg = if e.grammar && at == buf.len() {
            "EOF while parsing a value"
        } else {
            e.msg.as_str()
        };
        let before = buf.get(..at).unwrap_or_default();
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        // 1-based, at the offending byte (serde_json counts the bytes read).
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let column = at + 1 - line_start;
        format!("{msg} at line {line} column {column}")
    })
}

/// A message from [`parse_document`] or `serde_json` without its position
/// (` at line L column C`), for tests comparing the two.
#[cfg(test)]
pub(crate) fn without_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// serde's `invalid type: <what comes next>, expected <expected>`; the
/// value is consumed when it is a scalar.
pub(crate) fn invalid_type(r: &mut Reader<'_, '_>, expected: &str) -> FieldError {
    let at = r.offset();
    let described;
    let found = match r.peek() {
        Some(b'"') => match r.str().and_then(|s| s.decode()) {
            Ok(s) => {
                described = format!("string {:?}", &*s);
                described.as_str()
            }
            Err(e) => return e.into(),
        },
        Some(b'{') => "map",
        Some(b'[') => "sequence",
        Some(b't' | b'f') => match r.bool() {
            Ok(true) => "boolean `true`",
            Ok(false) => "boolean `false`",
            Err(e) => return e.into(),
        },
        Some(b'n') if r.null() => "null",
        Some(b'-' | b'0'..=b'9') => match r.number_text() {
            Ok(text) => {
                described = describe_number(text);
                described.as_str()
            }
            Err(e) => return e.into(),
        },
        _ => return r.expected("expected value").into(),
    };
    FieldError::new(format!("invalid type: {found}, expected {expected}"), at)
}

/// A number as serde's `Unexpected` shows it: `integer `5``, or
/// `floating point `1.5`` (as written: no float is parsed).
fn describe_number(text: &str) -> String {
    // serde_json reads `-0` as a float.
    let integral = !text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) && text != "-0";
    if integral && (parse_u64(text).is_some() || text.parse::<i64>().is_ok()) {
        format!("integer `{text}`")
    } else {
        format!("floating point `{}`", float_text(text))
    }
}

/// `text` as a `u64`, if it is one. (Not inlined: one copy of the parser
/// for [`describe_number`] and [`read_uint`].)
#[inline(never)]
fn parse_u64(text: &str) -> Option<u64> {
    text.parse().ok()
}

/// A JSON number as `serde_json` shows the `f64` it is (`1e3` -> `1000.0`,
/// `1e20` -> `1e+20`), worked out on its decimal digits:
/// exact when it has at most 15 significant digits (any such decimal is the
/// shortest one naming its `f64`) in the normal range; otherwise the text
/// as written (`serde_json` shows `18446744073709551616` as
/// `1.8446744073709552e+19`). No float is parsed: that code is large.
fn float_text(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.bytes().position(|b| matches!(b, b'e' | b'E')) {
        Some(i) => {
            // Both sides of an ASCII letter are character boundaries.
            let (m, e) = (unsigned.get(..i), unsigned.get(i + 1..));
            let e = e.unwrap_or_default();
            let e = e.strip_prefix('+').unwrap_or(e);
            (m.unwrap_or_default(), e.parse::<i64>().ok())
        }
        None => (unsigned, Some(0)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = [int, frac].concat();
    let sign = if negative { "-" } else { "" };
    // Without its leading zeros (the digits are ASCII: any cut is a
    // character boundary).
    let leading = digits.bytes().take_while(|&b| b == b'0').count();
    let digits = digits.get(leading..).unwrap_or_default();
    let significant = digits.trim_end_matches('0');
    let as_written = [text, "", "", ""];
    let pieces = 'shown: {
        if significant.is_empty() {
            break 'shown [sign, "0.0", "", ""];
        }
        let Some(exponent) = exponent else {
            break 'shown as_written;
        };
        let frac_len = i64::try_from(frac.len()).unwrap_or(i64::MAX);
        let trailing = i64::try_from(digits.len() - significant.len()).unwrap_or(0);
        let scale = exponent.saturating_sub(frac_len).saturating_add(trailing);
        let len = i64::try_from(significant.len()).unwrap_or(i64::MAX);
        // The power of ten of the leading digit.
        let lead = scale.saturating_add(len - 1);
        // More digits than an `f64` holds exactly (it would need rounding
        // in binary), or out of the normal range: shown as written.
        if significant.len() > 15 || !(-307..=308).contains(&lead) {
            break 'shown as_written;
        }
        if !(-5..=15).contains(&lead) {
            // `1.5e+20`, `1e-7`: serde_json's form.
            let (first, rest) = significant.split_at(1.min(significant.len()));
            let point = if rest.is_empty() { "" } else { "." };
            // The exponent with its sign, `+` included.
            return format!("{sign}{first}{point}{rest}e{lead:+}");
        }
        // From here `lead` is in -5..=15, so at most 15 zeros are written.
        const ZEROS: &str = "000000000000000";
        let zeros = |n: i64| {
            ZEROS
                .get(..usize::try_from(n).unwrap_or(0))
                .unwrap_or(ZEROS)
        };
        let point = len + scale;
        if scale >= 0 {
            [sign, significant, zeros(scale), ".0"]
        } else if point > 0 {
            let (whole, part) = significant.split_at(usize::try_from(point).unwrap_or(0));
            [sign, whole, ".", part]
        } else {
            [sign, "0.", zeros(-point), significant]
        }
    };
    pieces.concat()
}

/// serde's list of the names expected: `` `a` ``, `` `a` or `b` ``,
/// `` one of `a`, `b`, `c` ``.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        many => {
            let quoted: Vec<String> = many.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

/// An unsigned integer of at most `max`, named `ty` (`u16`) in messages.
pub(crate) fn read_uint(r: &mut Reader<'_, '_>, ty: &str, max: u64) -> Result<u64, FieldError> {
    let at = r.offset();
    if !matches!(r.peek(), Some(b'-' | b'0'..=b'9')) {
        return Err(invalid_type(r, ty));
    }
    let text = r.number_text()?;
    match parse_u64(text) {
        Some(n) if n <= max => Ok(n),
        _ => {
            // Negative, too large, or not an integer.
            let shown = describe_number(text);
            let kind = if shown.starts_with("integer") {
                "value"
            } else {
                "type"
            };
            let msg = format!("invalid {kind}: {shown}, expected {ty}");
            Err(FieldError::new(msg, at))
        }
    }
}

/// A string.
pub(crate) fn read_string(r: &mut Reader<'_, '_>) -> Result<String, FieldError> {
    if r.peek() == Some(b'"') {
        Ok(r.str()?.decode()?.0.into_owned())
    } else {
        Err(invalid_type(r, "a string"))
    }
}

/// A boolean.
pub(crate) fn read_bool(r: &mut Reader<'_, '_>) -> Result<bool, FieldError> {
    if matches!(r.peek(), Some(b't' | b'f')) {
        Ok(r.bool()?)
    } else {
        Err(invalid_type(r, "a boolean"))
    }
}

/// A string, or `null`, read into the field `slot` (as [`set`] sets it).
/// (Not inlined, as the next two: one copy for the many fields of each
/// type.)
#[inline(never)]
pub(crate) fn read_opt_string(
    r: &mut Reader<'_, '_>,
    slot: &mut Option<String>,
) -> Result<(), FieldError> {
    *slot = read_opt(r, read_string)?;
    Ok(())
}

/// A boolean, or `null`, read into the field `slot`.
#[inline(never)]
fn read_opt_bool(r: &mut Reader<'_, '_>, slot: &mut Option<bool>) -> Result<(), FieldError> {
    *slot = read_opt(r, read_bool)?;
    Ok(())
}

/// A `usize`, or `null`, read into the field `slot`.
#[inline(never)]
fn read_opt_usize(r: &mut Reader<'_, '_>, slot: &mut Option<usize>) -> Result<(), FieldError> {
    *slot = read_opt(r, read_usize)?;
    Ok(())
}

/// A value `read` reads, or `null` (`None`).
pub(crate) fn read_opt<'a, 'h, T>(
    r: &mut Reader<'a, 'h>,
    read: impl FnOnce(&mut Reader<'a, 'h>) -> Result<T, FieldError>,
) -> Result<Option<T>, FieldError> {
    if r.null() {
        Ok(None)
    } else {
        read(r).map(Some)
    }
}

/// An array whose elements `read` reads.
pub(crate) fn read_seq<'a, 'h, T>(
    r: &mut Reader<'a, 'h>,
    read: impl FnMut(&mut Reader<'a, 'h>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    let mut items = Vec::new();
    read_seq_into(r, &mut items, read)?;
    Ok(items)
}

/// [`read_seq`] onto `items` (a field being read, empty): no list built
/// and moved into it.
pub(crate) fn read_seq_into<'a, 'h, T>(
    r: &mut Reader<'a, 'h>,
    items: &mut Vec<T>,
    mut read: impl FnMut(&mut Reader<'a, 'h>) -> Result<T, FieldError>,
) -> Result<(), FieldError> {
    read_items(r, &mut |r| {
        items.push(read(r)?);
        Ok(())
    })
}

/// An array: `item` is called for each element and must read it. (A
/// `dyn` callback: one copy of the loop, whatever the element type.)
#[inline(never)]
fn read_items<'a, 'h>(
    r: &mut Reader<'a, 'h>,
    item: &mut dyn FnMut(&mut Reader<'a, 'h>) -> Result<(), FieldError>,
) -> Result<(), FieldError> {
    if r.peek() != Some(b'[') {
        return Err(invalid_type(r, "a sequence"));
    }
    r.begin_array()?;
    let mut read = 0;
    while r.next_item(read)? {
        item(r)?;
        read += 1;
    }
    Ok(())
}

/// An array of strings.
pub(crate) fn read_strings(r: &mut Reader<'_, '_>) -> Result<Vec<String>, FieldError> {
    read_seq(r, read_string)
}

/// The index of `name` in `variants`, or serde's `unknown variant`.
fn variant_index(name: Str<'_>, variants: &[&str]) -> Result<usize, FieldError> {
    let at = name.offset();
    let name = name.decode()?;
    variants.iter().position(|v| **v == *name).ok_or_else(|| {
        FieldError::new(
            format!(
                "unknown variant `{}`, expected {}",
                &*name,
                one_of(variants)
            ),
            at,
        )
    })
}

/// A unit-only enum (`"name"`, or `{"name": null}`): the index of its name
/// in `variants`.
pub(crate) fn read_unit_enum(
    r: &mut Reader<'_, '_>,
    variants: &'static [&'static str],
) -> Result<usize, FieldError> {
    match r.peek() {
        Some(b'"') => variant_index(r.str()?, variants),
        Some(b'{') => {
            let at = r.offset();
            r.begin_object()?;
            let Some(key) = r.next_key(0)? else {
                return Err(FieldError::new("expected value".to_owned(), at + 1));
            };
            let index = variant_index(key, variants)?;
            if !r.null() {
                return Err(invalid_type(r, "unit"));
            }
            if r.peek() != Some(b'}') {
                return Err(r.expected("expected value").into());
            }
            r.next_key(1)?;
            Ok(index)
        }
        _ => Err(r.expected("expected value").into()),
    }
}

/// A struct as `#[derive(Deserialize)]` reads it: its name and fields.
pub(crate) struct Shape {
    /// The type's name, for messages (`struct RawConfig`).
    pub(crate) name: &'static str,
    /// The JSON names of the fields, in declaration order.
    pub(crate) fields: &'static [&'static str],
    /// The fields an object must have (bit `i` is `fields[i]`).
    pub(crate) required: u32,
    /// The fields with a default (`#[serde(default)]`): an array may end
    /// before them. Other absent fields are `None`, or an error if required.
    pub(crate) defaulted: u32,
    /// Unknown keys are refused (`deny_unknown_fields`) rather than skipped.
    pub(crate) deny_unknown: bool,
}

impl Shape {
    /// Reads a struct of this shape, field by field: an object, or an
    /// array of its fields in order. `field` is called with the index of
    /// each field present and must read its value. (A `dyn` callback: one
    /// copy of the loop in the module, whatever the struct.)
    #[inline(never)]
    pub(crate) fn read<'a, 'h>(
        &self,
        r: &mut Reader<'a, 'h>,
        field: &mut dyn FnMut(&mut Reader<'a, 'h>, usize) -> Result<(), FieldError>,
    ) -> Result<(), FieldError> {
        let mut fields = Fields::begin(r, self)?;
        while let Some(index) = fields.next(r)? {
            field(r, index)?;
        }
        Ok(())
    }
}

/// [`Shape::read`]'s state: where it is in the struct.
struct Fields<'s> {
    shape: &'s Shape,
    array: bool,
    /// Keys or elements read so far.
    read: usize,
    /// The fields seen (bit `i` is `fields[i]`).
    seen: u32,
}

impl<'s> Fields<'s> {
    /// Opens the struct (an object or an array).
    fn begin(r: &mut Reader<'_, '_>, shape: &'s Shape) -> Result<Fields<'s>, FieldError> {
        let array = match r.peek() {
            Some(b'{') => false,
            Some(b'[') => true,
            _ => return Err(invalid_type(r, &format!("struct {}", shape.name))),
        };
        if array {
            r.begin_array()?;
        } else {
            r.begin_object()?;
        }
        Ok(Fields {
            shape,
            array,
            read: 0,
            seen: 0,
        })
    }

    /// The index of the next field, whose value is to be read next; `None`
    /// at the end of the struct (closed, every required field seen).
    fn next(&mut self, r: &mut Reader<'_, '_>) -> Result<Option<usize>, FieldError> {
        let shape = self.shape;
        let count = shape.fields.len();
        if self.array {
            if !r.next_item(self.read)? {
                // The first field after the end without a default.
                let after_end = ((1u64 << count) - 1) & !((1u64 << self.read) - 1);
                let without_default = after_end & !u64::from(shape.defaulted);
                if without_default != 0 {
                    let first = without_default.trailing_zeros();
                    let s = if count == 1 { "" } else { "s" };
                    let msg = format!(
                        "invalid length {first}, expected struct {} with {count} element{s}",
                        shape.name
                    );
                    return Err(FieldError::new(msg, r.offset()));
                }
                return Ok(None);
            }
            if self.read == count {
                return Err(r.expected("trailing characters").into());
            }
            self.read += 1;
            return Ok(Some(self.read - 1));
        }
        while let Some(key) = r.next_key(self.read)? {
            self.read += 1;
            let at = key.offset();
            let name = key.decode()?;
            let Some(index) = shape.fields.iter().position(|f| **f == *name) else {
                if shape.deny_unknown {
                    let msg = match shape.fields {
                        [] => format!("unknown field `{}`, there are no fields", &*name),
                        fields => {
                            format!("unknown field `{}`, expected {}", &*name, one_of(fields))
                        }
                    };
                    return Err(FieldError::new(msg, at));
                }
                r.skip()?;
                continue;
            };
            if self.seen & (1 << index) != 0 {
                let msg = format!("duplicate field `{}`", shape.fields[index]);
                return Err(FieldError::new(msg, at));
            }
            self.seen |= 1 << index;
            return Ok(Some(index));
        }
        // The first required field missing, in declaration order.
        let missing = shape.required & !self.seen;
        if missing != 0 {
            let index = missing.trailing_zeros() as usize;
            let msg = format!("missing field `{}`", shape.fields[index]);
            return Err(FieldError::new(msg, r.offset()));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_means_defaults() {
        for input in ["", "  \n", "{}"] {
            let config = Config::from_bytes(input.as_bytes()).unwrap();
            assert_eq!(
                config.style_for(Family::Imagen),
                ApiStyle::Native,
                "{input:?}"
            );
            assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
            assert!(config.retired.is_empty());
            assert_eq!(config.native_version, "v1beta");
            assert_eq!(config.openai_base_path, "/v1beta/openai");
            assert_eq!(config.authority, None);
            assert_eq!(
                config.summary(),
                "api_style=native family_styles=0 rules=8 upstream=(unchanged) max_body_bytes=33554432"
            );
        }
    }

    #[test]
    fn a_full_configuration_compiles() {
        let json = r#"{
            "api_style": "openai",
            "family_styles": {"imagen": "vertex"},
            "rules": [{"match": "my-*", "family": "imagen"}],
            "builtin_rules": true,
            "default_family": "gemini",
            "native_version": "v1",
            "openai_base_path": "/openai/v1/",
            "openai_images_families": ["imagen"],
            "vertex": {"project": "p-1", "location": "us-central1"},
            "upstream": "https://generativelanguage.googleapis.com",
            "annotate_statuses": [404, 400],
            "max_body_bytes": 1048576,
            "max_model_length": 64,
            "image_message_format": "image_url_parts"
        }"#;
        let config = Config::from_bytes(json.as_bytes()).unwrap();
        assert_eq!(config.style_for(Family::Imagen), ApiStyle::Vertex);
        assert_eq!(config.style_for(Family::Gemini), ApiStyle::Openai);
        assert_eq!(config.openai_base_path, "/openai/v1");
        assert!(config.openai_images_serves(Family::Imagen));
        assert!(!config.openai_images_serves(Family::GeminiImage));
        assert_eq!(
            config.authority.as_deref(),
            Some("generativelanguage.googleapis.com")
        );
        assert_eq!(
            config.vertex.as_ref().map(|v| v.publisher.as_str()),
            Some("google")
        );
        assert_eq!(
            config.classifier.classify("my-model").family,
            Family::Imagen
        );
        assert_eq!(
            config.translate.image_format,
            ImageMessageFormat::ImageUrlParts
        );
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let cases = [
            ("unknown field", r#"{"nope": 1}"#, "unknown field `nope`"),
            (
                "bad style",
                r#"{"api_style": "grpc"}"#,
                "unknown variant `grpc`",
            ),
            (
                "bad family",
                r#"{"rules": [{"match": "x", "family": "llama"}]}"#,
                "unknown variant `llama`",
            ),
            (
                "bad glob",
                r#"{"rules": [{"match": "a/b", "family": "imagen"}]}"#,
                "rules[0].match",
            ),
            (
                "empty glob",
                r#"{"rules": [{"match": "", "family": "imagen"}]}"#,
                "rules[0].match",
            ),
            (
                "vertex missing",
                r#"{"api_style": "vertex"}"#,
                "vertex: is required",
            ),
            (
                "vertex via family",
                r#"{"family_styles": {"veo": "vertex"}}"#,
                "vertex: is required",
            ),
            (
                "vertex bad project",
                r#"{"vertex": {"project": "a/b", "location": "l"}}"#,
                "vertex.project",
            ),
            (
                "upstream not a url",
                r#"{"upstream": "not a url"}"#,
                "upstream",
            ),
            (
                "upstream with path",
                r#"{"upstream": "https://h/x"}"#,
                "upstream: must be scheme://host[:port]",
            ),
            (
                "upstream ftp",
                r#"{"upstream": "ftp://h"}"#,
                "upstream: the scheme",
            ),
            (
                "upstream creds",
                r#"{"upstream": "https://u:p@h"}"#,
                "upstream: must not carry credentials",
            ),
            (
                "status 200",
                r#"{"annotate_statuses": [200]}"#,
                "annotate_statuses: 200",
            ),
            ("zero body", r#"{"max_body_bytes": 0}"#, "max_body_bytes"),
            (
                "huge body",
                r#"{"max_body_bytes": 2000000000}"#,
                "max_body_bytes",
            ),
            (
                "negative body",
                r#"{"max_body_bytes": -1}"#,
                "invalid value: integer `-1`",
            ),
            (
                "zero model length",
                r#"{"max_model_length": 0}"#,
                "max_model_length",
            ),
            (
                "unknown image format",
                r#"{"image_message_format": "html"}"#,
                "unknown variant `html`, expected `markdown` or `image_url_parts`",
            ),
            (
                "unknown restore policy",
                r#"{"thought_signatures": {"restore": "always"}}"#,
                "unknown variant `always`, expected one of `off`, `remembered`, `remembered_then_bypass`",
            ),
            (
                "no signature slots",
                r#"{"thought_signatures": {"cache_entries": 0}}"#,
                "thought_signatures.cache_entries: must be between 1 and 65536",
            ),
            (
                "signatures too large",
                r#"{"thought_signatures": {"max_signature_bytes": 2000000}}"#,
                "thought_signatures.max_signature_bytes: must be between 1 and 1048576",
            ),
            (
                "unknown signature field",
                r#"{"thought_signatures": {"entries": 5}}"#,
                "unknown field `entries`",
            ),
            (
                "bad version",
                r#"{"native_version": "v2"}"#,
                "native_version",
            ),
            (
                "bad base path",
                r#"{"openai_base_path": "v1/../x"}"#,
                "openai_base_path",
            ),
            ("not json", "{", "configuration: EOF"),
            ("wrong type", r#"{"builtin_rules": "yes"}"#, "invalid type"),
        ];
        for (name, json, want) in cases {
            let err = Config::from_bytes(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn base_paths_are_absolute_paths_of_plain_segments() {
        let cases = [
            ("/v1beta/openai", Some("/v1beta/openai")),
            ("/openai/v1/", Some("/openai/v1")),
            ("/a//", Some("/a")),
            ("/a.b-c_d/E9", Some("/a.b-c_d/E9")),
            ("/...", Some("/...")),
            ("/", None),
            ("", None),
            ("///", None),
            ("v1", None),
            ("v1/../x", None),
            ("/a//b", None),
            ("/a/./b", None),
            ("/a/../b", None),
            ("/.", None),
            ("/..", None),
            ("/a b", None),
            ("/caf\u{e9}", None),
            ("/a?b", None),
        ];
        for (path, want) in cases {
            assert_eq!(validate_base_path(path).ok(), want, "{path}");
        }
    }

    #[test]
    fn upstream_is_an_authority() {
        let cases = [
            (
                "https://generativelanguage.googleapis.com",
                Ok("generativelanguage.googleapis.com"),
            ),
            (
                "https://generativelanguage.googleapis.com/",
                Ok("generativelanguage.googleapis.com"),
            ),
            (
                "HTTPS://Gemini.Example.COM:8443",
                Ok("gemini.example.com:8443"),
            ),
            ("https://h:443", Ok("h")),
            ("http://h:80", Ok("h")),
            ("http://h:443", Ok("h:443")),
            ("http://[::1]:8080", Ok("[::1]:8080")),
            ("http://[2001:DB8::1]", Ok("[2001:db8::1]")),
            ("http://10.0.0.1:9000/", Ok("10.0.0.1:9000")),
            ("not a url", Err("upstream: must be scheme://host[:port]")),
            ("https://h/x", Err("upstream: must be scheme://host[:port]")),
            (
                "https://h?x=1",
                Err("upstream: must be scheme://host[:port]"),
            ),
            ("https://h#f", Err("upstream: must be scheme://host[:port]")),
            ("ftp://h", Err("upstream: the scheme")),
            ("https://u:p@h", Err("upstream: must not carry credentials")),
            ("https://", Err("upstream: has no valid host")),
            ("https://h:", Err("upstream: has an invalid port")),
            ("https://h:99999", Err("upstream: has an invalid port")),
            ("https://h:+1", Err("upstream: has an invalid port")),
            ("https://h..x", Err("upstream: has no valid host")),
            ("https://.h", Err("upstream: has no valid host")),
            ("https://.", Ok(".")),
            ("https://h.", Ok("h.")),
            ("https://A..b.:8080", Ok("a..b.:8080")),
            (
                "https://caf\u{e9}.example",
                Err("upstream: has no valid host"),
            ),
            ("https://[zz]:1", Err("upstream: has an invalid IPv6")),
            (
                "https://[::1",
                Err("upstream: must be scheme://host[:port]"),
            ),
            ("https://h x", Err("upstream: has no valid host")),
        ];
        for (value, want) in cases {
            let got = parse_upstream(value).map_err(|e| e.to_string());
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{value}"),
                (Err(got), Err(want)) => assert!(
                    got.starts_with(&format!("configuration: {want}")),
                    "{value}: {got}"
                ),
                (got, want) => panic!("{value}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn read_errors_say_where() {
        let err = Config::from_bytes(b"{\n  \"nope\": 1}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: unknown field `nope`, expected one of `api_style`, `family_styles`, \
             `rules`, `builtin_rules`, `default_family`, `native_version`, `openai_base_path`, \
             `openai_images_families`, `vertex`, `upstream`, `annotate_statuses`, \
             `max_body_bytes`, `max_model_length`, `image_message_format`, `lifecycle`, \
             `builtin_lifecycle`, `migrate`, `migrate_always`, `task_model`, `task_prefixes`, \
             `live_catalogue`, `thought_signatures`, `route_removes_accept_encoding` at line 2 \
             column 4"
        );
        let err = Config::from_bytes(br#"{"max_body_bytes": 1.5}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration: invalid type: floating point `1.5`, expected usize at line 1 column 20"
        );
    }

    #[test]
    fn upstream_keeps_an_explicit_port() {
        let config = Config::from_bytes(br#"{"upstream": "http://127.0.0.1:8080"}"#).unwrap();
        assert_eq!(config.authority.as_deref(), Some("127.0.0.1:8080"));
    }
}

#[cfg(test)]
mod raw_struct_tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use std::collections::BTreeMap;

    /// The raw structs and enums as `#[derive(Deserialize)]` reads them,
    /// under the same names (so their `Debug` output is the same): the
    /// oracle [`Shape::read`] and `read_unit_enum` are held to.
    mod derived {
        // Read only through `Debug`, which the dead-code lint does not count.
        #![allow(dead_code)]

        use serde::Deserialize;
        use std::collections::BTreeMap;

        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Restore {
            Off,
            Remembered,
            RememberedThenBypass,
        }

        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ImageMessageFormat {
            Markdown,
            ImageUrlParts,
        }

        #[derive(Debug, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
        #[serde(rename_all = "snake_case")]
        pub enum Family {
            Gemini,
            GeminiImage,
            Imagen,
            Veo,
            Embedding,
            Aqa,
        }

        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ApiStyle {
            Openai,
            Native,
            Vertex,
        }

        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum MigratePolicy {
            Never,
            AfterShutdown,
        }

        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum RawStatus {
            Live,
            Deprecated,
            ShutDown,
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawConfig {
            api_style: Option<ApiStyle>,
            #[serde(default)]
            family_styles: BTreeMap<Family, ApiStyle>,
            #[serde(default)]
            rules: Vec<RawRule>,
            builtin_rules: Option<bool>,
            default_family: Option<Family>,
            native_version: Option<String>,
            openai_base_path: Option<String>,
            #[serde(default)]
            openai_images_families: Vec<Family>,
            vertex: Option<RawVertex>,
            upstream: Option<String>,
            annotate_statuses: Option<Vec<u16>>,
            max_body_bytes: Option<usize>,
            max_model_length: Option<usize>,
            image_message_format: Option<ImageMessageFormat>,
            #[serde(default)]
            lifecycle: Vec<RawRow>,
            builtin_lifecycle: Option<bool>,
            migrate: Option<MigratePolicy>,
            #[serde(default)]
            migrate_always: Vec<String>,
            task_model: Option<String>,
            task_prefixes: Option<Vec<String>>,
            live_catalogue: Option<bool>,
            thought_signatures: Option<RawSignatures>,
            route_removes_accept_encoding: Option<bool>,
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawSignatures {
            restore: Option<Restore>,
            cache_entries: Option<u32>,
            max_signature_bytes: Option<usize>,
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawRule {
            #[serde(rename = "match")]
            pattern: String,
            family: Family,
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawVertex {
            project: String,
            location: String,
            publisher: Option<String>,
            version: Option<String>,
        }

        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct RawRow {
            #[serde(rename = "match")]
            pattern: String,
            status: Option<RawStatus>,
            deprecated: Option<String>,
            shutdown: Option<String>,
            replacement: Option<String>,
            source: Option<String>,
        }
    }

    /// What the derive gives reading `json` as `T`, value or error message
    /// (without its position), as text.
    fn derived<T: DeserializeOwned + fmt::Debug>(json: &str) -> String {
        let read = serde_json::from_slice::<T>(json.as_bytes());
        format!("{:?}", read.map_err(|e| without_position(&e.to_string())))
    }

    /// What `read` gives reading `json`, as [`derived`] shows it.
    fn read<'a, T: fmt::Debug>(
        json: &'a str,
        read: impl FnMut(&mut Reader<'a, '_>) -> Result<T, FieldError>,
    ) -> String {
        let read = parse_document(json.as_bytes(), read);
        format!("{:?}", read.map_err(|e| without_position(&e)))
    }

    /// A map of family -> integer, shown as a map.
    struct Keyed(Vec<(Family, u64)>);

    impl fmt::Debug for Keyed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_map()
                .entries(self.0.iter().map(|(k, v)| (k, v)))
                .finish()
        }
    }

    fn read_keyed(r: &mut Reader<'_, '_>) -> Result<Keyed, FieldError> {
        let mut keyed = Vec::new();
        r.begin_object()?;
        while let Some(key) = r.next_key(keyed.len())? {
            let family = Family::ALL[variant_index(key, &Family::NAMES)?];
            keyed.push((family, read_uint(r, "u8", 255)?));
        }
        Ok(Keyed(keyed))
    }

    #[test]
    fn raw_config_reads_as_the_derive_reads_it() {
        // The 22 fields in order: the defaulted ones empty, the rest null.
        let fields = "null,{},[],null,null,null,null,[],null,null,null,\
                      null,null,null,[],null,null,[],null,null,null,null";
        let all_fields = format!("[{fields}]");
        let too_many = format!("[{fields},null]");
        let cases: Vec<(&str, &str)> = vec![
            ("empty object", "{}"),
            ("empty text", ""),
            ("null", "null"),
            ("number", "1"),
            ("string", r#""x""#),
            ("truncated", r#"{"api_style":"#),
            ("trailing text", r#"{"api_style":"native"} x"#),
            (
                "full",
                r#"{"api_style":"openai","family_styles":{"imagen":"vertex","veo":"native"},
                    "rules":[{"match":"my-*","family":"imagen"}],"builtin_rules":true,
                    "default_family":"gemini_image","native_version":"v1",
                    "openai_base_path":"/openai/v1/","openai_images_families":["imagen","gemini_image"],
                    "vertex":{"project":"p-1","location":"us-central1","publisher":"g","version":"v1"},
                    "upstream":"https://h","annotate_statuses":[404,400],"max_body_bytes":1048576,
                    "max_model_length":64,"image_message_format":"image_url_parts",
                    "lifecycle":[{"match":"x-*","status":"shut_down","deprecated":"2026-01-01",
                                  "shutdown":"2026-02-01","replacement":"y","source":"s"}],
                    "builtin_lifecycle":false,"migrate":"never","migrate_always":["a*"],
                    "task_model":"gemini-3.5-flash","task_prefixes":["Task:"],
                    "live_catalogue":false,
                    "thought_signatures":{"restore":"remembered","cache_entries":8,"max_signature_bytes":64},
                    "route_removes_accept_encoding":true}"#,
            ),
            (
                "every field null",
                r#"{"api_style":null,"builtin_rules":null,"default_family":null,"native_version":null,"openai_base_path":null,"vertex":null,"upstream":null,"annotate_statuses":null,"max_body_bytes":null,"max_model_length":null,"image_message_format":null,"builtin_lifecycle":null,"migrate":null,"task_model":null,"task_prefixes":null,"live_catalogue":null,"thought_signatures":null,"route_removes_accept_encoding":null}"#,
            ),
            ("null for a defaulted list", r#"{"rules":null}"#),
            ("null for a defaulted map", r#"{"family_styles":null}"#),
            ("unknown field", r#"{"nope":1}"#),
            (
                "unknown field after a known one",
                r#"{"api_style":"native","nope":1}"#,
            ),
            (
                "repeated field",
                r#"{"api_style":"native","api_style":"openai"}"#,
            ),
            ("repeated defaulted field", r#"{"rules":[],"rules":[]}"#),
            (
                "escaped key",
                r#"{"api\u005fstyle":"vertex","vertex":{"project":"p","location":"l"}}"#,
            ),
            ("style as a map", r#"{"api_style":{"native":null}}"#),
            (
                "style as a map with a value",
                r#"{"api_style":{"native":1}}"#,
            ),
            (
                "style as a map of two",
                r#"{"api_style":{"native":null,"openai":null}}"#,
            ),
            ("unknown style", r#"{"api_style":"grpc"}"#),
            ("unknown style in a map", r#"{"api_style":{"grpc":null}}"#),
            ("style in capitals", r#"{"api_style":"NATIVE"}"#),
            ("style as a number", r#"{"api_style":5}"#),
            ("style as a list", r#"{"api_style":["native"]}"#),
            ("style as an empty map", r#"{"api_style":{}}"#),
            (
                "family styles repeated key",
                r#"{"family_styles":{"imagen":"vertex","imagen":"native"}}"#,
            ),
            (
                "family styles unknown family",
                r#"{"family_styles":{"llama":"native"}}"#,
            ),
            (
                "family styles map-form style",
                r#"{"family_styles":{"imagen":{"openai":null}}}"#,
            ),
            ("family styles not a map", r#"{"family_styles":["imagen"]}"#),
            (
                "images families",
                r#"{"openai_images_families":["imagen",5]}"#,
            ),
            ("default family unknown", r#"{"default_family":"llama"}"#),
            ("rule", r#"{"rules":[{"match":"x","family":"veo"}]}"#),
            ("rule without family", r#"{"rules":[{"match":"x"}]}"#),
            ("rule without match", r#"{"rules":[{"family":"imagen"}]}"#),
            ("rule, empty", r#"{"rules":[{}]}"#),
            (
                "rule with an extra key",
                r#"{"rules":[{"match":"x","family":"imagen","x":1}]}"#,
            ),
            (
                "rule with a repeated key",
                r#"{"rules":[{"match":"x","match":"y","family":"imagen"}]}"#,
            ),
            ("rule as a list", r#"{"rules":[["x","imagen"]]}"#),
            ("rule as a short list", r#"{"rules":[["x"]]}"#),
            ("rule as a long list", r#"{"rules":[["x","imagen",1]]}"#),
            ("rule as an empty list", r#"{"rules":[[]]}"#),
            ("rule as a string", r#"{"rules":["x"]}"#),
            ("rules not a list", r#"{"rules":{}}"#),
            ("vertex", r#"{"vertex":{"project":"p","location":"l"}}"#),
            ("vertex without project", r#"{"vertex":{"location":"l"}}"#),
            ("vertex without either", r#"{"vertex":{"version":"v"}}"#),
            (
                "vertex with an extra key",
                r#"{"vertex":{"project":"p","location":"l","zone":"z"}}"#,
            ),
            ("vertex as a full list", r#"{"vertex":["p","l",null,"v1"]}"#),
            ("vertex as a short list", r#"{"vertex":["p","l"]}"#),
            (
                "vertex as a long list",
                r#"{"vertex":["p","l",null,null,null]}"#,
            ),
            ("vertex as an empty list", r#"{"vertex":[]}"#),
            (
                "vertex project null",
                r#"{"vertex":{"project":null,"location":"l"}}"#,
            ),
            ("statuses", r#"{"annotate_statuses":[400,70000]}"#),
            ("statuses negative", r#"{"annotate_statuses":[-1]}"#),
            ("body bytes float", r#"{"max_body_bytes":1.5}"#),
            ("body bytes exponent", r#"{"max_body_bytes":1e3}"#),
            ("body bytes negative", r#"{"max_body_bytes":-1}"#),
            (
                "body bytes beyond u64",
                r#"{"max_body_bytes":100000000000000000000}"#,
            ),
            ("body bytes string", r#"{"max_body_bytes":"5"}"#),
            ("builtin rules string", r#"{"builtin_rules":"yes"}"#),
            (
                "route removes accept-encoding as a string",
                r#"{"route_removes_accept_encoding":"true"}"#,
            ),
            ("image format unknown", r#"{"image_message_format":"html"}"#),
            ("migrate", r#"{"migrate":"after_shutdown"}"#),
            ("migrate as a map", r#"{"migrate":{"never":null}}"#),
            ("migrate unknown", r#"{"migrate":"sometimes"}"#),
            (
                "lifecycle row",
                r#"{"lifecycle":[{"match":"x","status":"live"}]}"#,
            ),
            (
                "lifecycle row without match",
                r#"{"lifecycle":[{"status":"live"}]}"#,
            ),
            (
                "lifecycle status unknown",
                r#"{"lifecycle":[{"match":"x","status":"dead"}]}"#,
            ),
            (
                "lifecycle row unknown key",
                r#"{"lifecycle":[{"match":"x","nope":1}]}"#,
            ),
            (
                "lifecycle row as a list",
                r#"{"lifecycle":[["x","shut_down",null,null,null,null]]}"#,
            ),
            ("lifecycle row as a short list", r#"{"lifecycle":[["x"]]}"#),
            ("task prefixes", r#"{"task_prefixes":["a",""]}"#),
            ("task prefixes null entry", r#"{"task_prefixes":[null]}"#),
            ("signatures", r#"{"thought_signatures":{"restore":"off"}}"#),
            (
                "signatures unknown restore",
                r#"{"thought_signatures":{"restore":"nope"}}"#,
            ),
            (
                "signatures negative entries",
                r#"{"thought_signatures":{"cache_entries":-1}}"#,
            ),
            (
                "signatures unknown key",
                r#"{"thought_signatures":{"x":1}}"#,
            ),
            (
                "signatures as a list",
                r#"{"thought_signatures":[null,4,null]}"#,
            ),
            (
                "signatures as a short list",
                r#"{"thought_signatures":[null]}"#,
            ),
            (
                "signatures as an empty object",
                r#"{"thought_signatures":{}}"#,
            ),
            ("config as an empty list", "[]"),
            ("config as a one-element list", "[null]"),
            ("config as a list of 22", &all_fields),
            ("config as a list of 23", &too_many),
            ("config as a list, wrong type", r#"[null,{},[],"yes"]"#),
        ];
        for (name, json) in cases {
            assert_eq!(
                read(json, RawConfig::read),
                derived::<derived::RawConfig>(json),
                "{name}"
            );
        }
    }

    #[test]
    fn numbers_are_shown_as_serde_json_shows_them() {
        let numbers = [
            "1.5",
            "1e3",
            "1E3",
            "1e+3",
            "1.0",
            "10.50",
            "1e15",
            "1e16",
            "1e17",
            "0.1",
            "123456789012345.6",
            "0.00001",
            "0.000001",
            "1e-7",
            "-2.5e-3",
            "-0.0",
            "0e5",
            "0.0",
            "-1.5",
            "123.456e2",
            "1.25e+20",
            "9.999e15",
            "1.5e308",
            "2.5e-300",
            "100000000000000000000",
            "12345678901234500000",
            "-0",
            "-1",
            "-9223372036854775808",
            "65536",
        ];
        for n in numbers {
            let json = format!(r#"{{"max_body_bytes":{n}}}"#);
            assert_eq!(
                read(&json, RawConfig::read),
                derived::<derived::RawConfig>(&json),
                "{n}"
            );
        }
        // More than 15 significant digits: shown as written, where serde_json
        // shows the `f64` (`1.8446744073709552e+19`).
        for n in [
            "18446744073709551616",
            "-9223372036854775809",
            "1.7976931348623157e308",
        ] {
            let json = format!(r#"{{"max_body_bytes":{n}}}"#);
            let want = format!("invalid type: floating point `{n}`, expected usize");
            assert_eq!(
                read(&json, RawConfig::read),
                format!("Err({want:?})"),
                "{n}"
            );
        }
    }

    #[test]
    fn lifecycle_rows_read_as_the_derive_reads_them() {
        let cases = [
            r#"[{"match":"x","status":"deprecated","shutdown":"2026-01-01","source":"s"}]"#,
            r#"[{"match":"x","match":"y"}]"#,
            r#"[{"match":"x","status":{"live":null}}]"#,
            r#"[{"match":"x","status":{"live":1}}]"#,
            r#"[{"match":1}]"#,
            r#"[{}]"#,
            r#"[[]]"#,
            r#"[["x",null,null,null,null]]"#,
            r#"[["x",null,null,null,null,null]]"#,
            r#"{"match":"x"}"#,
        ];
        for json in cases {
            assert_eq!(
                read(json, |r| read_seq(r, crate::lifecycle::RawRow::read)),
                derived::<Vec<derived::RawRow>>(json),
                "{json}"
            );
        }
    }

    #[test]
    fn unit_enums_read_as_the_derive_reads_them() {
        let cases = [
            r#""gemini""#,
            r#""gemini_image""#,
            r#""aqa""#,
            r#""Gemini""#,
            r#""""#,
            r#"{"veo":null}"#,
            r#"{"veo":[]}"#,
            r#"{"veo":null,"aqa":null}"#,
            r#"{"llama":null}"#,
            r#"{}"#,
            "null",
            "0",
            "[]",
            r#"["veo"]"#,
            r#""veo""#,
        ];
        for json in cases {
            assert_eq!(
                read(json, Family::read),
                derived::<derived::Family>(json),
                "{json}"
            );
            let map = format!("{{{json}:1}}");
            assert_eq!(
                read(&map, read_keyed),
                derived::<BTreeMap<derived::Family, u8>>(&map),
                "key {json}"
            );
        }
        for json in [
            r#"{}"#,
            r#"{"veo":"vertex","imagen":"native","gemini":"openai"}"#,
            r#"{"veo":"vertex","veo":"native"}"#,
            r#"{"veo":"vertex","llama":"native"}"#,
            r#"{"veo":"grpc"}"#,
            r#"{"veo":null}"#,
            r#"["veo"]"#,
            "null",
        ] {
            assert_eq!(
                read(json, FamilyStyles::read),
                derived::<BTreeMap<derived::Family, derived::ApiStyle>>(json),
                "{json}"
            );
        }
        for json in [r#""vertex""#, r#""openai""#, r#""native ""#] {
            assert_eq!(
                read(json, ApiStyle::read),
                derived::<derived::ApiStyle>(json),
                "{json}"
            );
        }
        for json in [r#""never""#, r#""after_shutdown""#, r#""always""#] {
            assert_eq!(
                read(json, MigratePolicy::read),
                derived::<derived::MigratePolicy>(json),
                "{json}"
            );
        }
    }

    #[test]
    fn the_all_lists_follow_declaration_order() {
        for (i, policy) in MigratePolicy::ALL.into_iter().enumerate() {
            assert_eq!(policy as usize, i, "{policy:?}");
        }
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;
    use serde_json::{json, Value};

    const SCHEMA: &str = include_str!("../schema/config.schema.json");

    /// The published schema and the parser agree: every documented default
    /// is accepted, every field in the schema is known to the parser, and
    /// the documented defaults are the ones the code uses.
    #[test]
    fn schema_defaults_are_accepted_and_match_the_code() {
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        let props = schema["properties"].as_object().unwrap();
        let mut all = serde_json::Map::new();
        for (name, prop) in props {
            if let Some(default) = prop.get("default") {
                let one = json!({ name.clone(): default });
                assert!(
                    Config::from_bytes(one.to_string().as_bytes()).is_ok(),
                    "{name}"
                );
                all.insert(name.clone(), default.clone());
            }
        }
        let config = Config::from_bytes(Value::Object(all).to_string().as_bytes()).unwrap();
        assert_eq!(config.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.max_model_length, DEFAULT_MAX_MODEL_LENGTH);
        assert_eq!(
            props["max_body_bytes"]["default"],
            json!(DEFAULT_MAX_BODY_BYTES)
        );
        assert_eq!(
            props["native_version"]["default"],
            json!(DEFAULT_NATIVE_VERSION)
        );
        assert_eq!(
            props["openai_base_path"]["default"],
            json!(DEFAULT_OPENAI_BASE_PATH)
        );
        // Every schema property is a field the parser knows.
        for name in props.keys() {
            let err = Config::from_bytes(json!({ name.clone(): null }).to_string().as_bytes());
            if let Err(e) = err {
                assert!(!e.to_string().contains("unknown field"), "{name}: {e}");
            }
        }
    }
}
