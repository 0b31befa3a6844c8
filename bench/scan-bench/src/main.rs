//! Body-scanning cost of gemini-router on the host, for `bench/run.py`.
//!
//! Operations, each one `#[no_mangle]` function named `bench_op_*` so
//! `valgrind --tool=callgrind --toggle-collect=bench_op_*` counts exactly
//! its instructions:
//!
//! - `scan`: `scan::top_level_fields(body, ["model", "stream"])`, what the
//!   filter does to an OpenAI-style body.
//! - `serde_value`: `serde_json::from_slice::<serde_json::Value>(body)`, the
//!   obvious alternative (a full tree).
//! - `serde_ignored`: `serde_json::from_slice::<serde::de::IgnoredAny>(body)`:
//!   serde_json validating and skipping the whole body without building
//!   anything, a floor for what a skipping scanner can cost.
//! - `flow_unchanged`: `flow::body` with `{"api_style":"openai"}` (the
//!   configuration of the Envoy benchmark): a chat request for a Gemini
//!   model is scanned and goes on unchanged.
//! - `flow_translated`: the same, with the model replaced by an image-output
//!   Gemini model (`gemini-3.1-flash-image`), which chat completions does not
//!   serve: the request is routed to `generateContent` and its body translated.
//!
//! Usage:
//!
//! ```text
//! scan-bench check FILE...            what each operation does with each body (JSON lines)
//! scan-bench once OP FILE             run OP once on FILE (under callgrind)
//! scan-bench time [--samples N] FILE...   wall time per operation (JSON lines, median of N samples)
//! ```

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gemini_router::config::Config;
use gemini_router::flow::{self, BodyStep, Head, Now};
use gemini_router::route::Auth;
use gemini_router::scan::top_level_fields;
use gemini_router::signatures::{Shared, Store};

/// The path of the benchmarked request: an OpenAI chat completion.
const PATH: &str = "/v1beta/openai/chat/completions";
const OPS: [&str; 5] = [
    "scan",
    "serde_value",
    "serde_ignored",
    "flow_unchanged",
    "flow_translated",
];
/// The model of the bodies `bench/run.py` writes, and its image-output sibling.
const MODEL: &[u8] = br#""gemini-3.5-flash""#;
const IMAGE_MODEL: &[u8] = br#""gemini-3.1-flash-image""#;

fn head() -> Head<'static> {
    Head {
        method: "POST",
        path: PATH,
        content_length: None,
        content_encoding: None,
        auth: Auth {
            authorization: Some("Bearer bench-key"),
            api_key: None,
        },
        now: Now::At(0),
        catalogue: None,
        // As in the filter: a signature memory is always there (empty here).
        signatures: Some(Shared(&NO_SIGNATURES)),
    }
}

/// The signature memory the benchmark's requests see: nothing remembered.
struct NoSignatures;

impl Store for NoSignatures {
    fn get(&self, _key: &str) -> Option<Vec<u8>> {
        None
    }
    fn set(&self, _key: &str, _value: &[u8]) -> bool {
        false
    }
}

static NO_SIGNATURES: NoSignatures = NoSignatures;

fn config() -> Result<Config, String> {
    Config::from_bytes(br#"{"api_style":"openai"}"#).map_err(|e| e.to_string())
}

/// The body an operation gets: `flow_translated` asks for the image model
/// (the last `"gemini-3.5-flash"` is replaced, outside the timing).
fn prepare(op: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
    if op != "flow_translated" {
        return Ok(body);
    }
    let at = body
        .windows(MODEL.len())
        .rposition(|w| w == MODEL)
        .ok_or("flow_translated needs a body whose model is gemini-3.5-flash")?;
    let mut out = Vec::with_capacity(body.len() + IMAGE_MODEL.len());
    out.extend_from_slice(&body[..at]);
    out.extend_from_slice(IMAGE_MODEL);
    out.extend_from_slice(&body[at + MODEL.len()..]);
    Ok(out)
}

/// Returns a number that depends on the result, so nothing is optimised away.
#[no_mangle]
#[inline(never)]
pub fn bench_op_scan(body: &[u8]) -> usize {
    match top_level_fields(black_box(body), ["model", "stream"]) {
        Ok([model, stream]) => model.map_or(0, <[u8]>::len) + stream.map_or(0, <[u8]>::len),
        Err(_) => usize::MAX,
    }
}

#[no_mangle]
#[inline(never)]
pub fn bench_op_serde_value(body: &[u8]) -> usize {
    match serde_json::from_slice::<serde_json::Value>(black_box(body)) {
        Ok(value) => value
            .get("model")
            .and_then(|m| m.as_str())
            .map_or(0, str::len),
        Err(_) => usize::MAX,
    }
}

#[no_mangle]
#[inline(never)]
pub fn bench_op_serde_ignored(body: &[u8]) -> usize {
    match serde_json::from_slice::<serde::de::IgnoredAny>(black_box(body)) {
        Ok(_) => 0,
        Err(_) => usize::MAX,
    }
}

fn flow_result(step: BodyStep) -> usize {
    match step {
        BodyStep::Pass(_) => 1,
        BodyStep::Reject(reply) => 2 + reply.body.len(),
        BodyStep::Route(routed, None) => 3 + routed.upstream_path().len(),
        BodyStep::Route(routed, Some((body, _))) => 4 + routed.upstream_path().len() + body.len(),
    }
}

#[no_mangle]
#[inline(never)]
pub fn bench_op_flow_unchanged(config: &Config, body: &[u8]) -> usize {
    flow_result(flow::body(config, &head(), black_box(body)))
}

#[no_mangle]
#[inline(never)]
pub fn bench_op_flow_translated(config: &Config, body: &[u8]) -> usize {
    flow_result(flow::body(config, &head(), black_box(body)))
}

fn run(op: &str, config: &Config, body: &[u8]) -> Result<usize, String> {
    Ok(match op {
        "scan" => bench_op_scan(body),
        "serde_value" => bench_op_serde_value(body),
        "serde_ignored" => bench_op_serde_ignored(body),
        "flow_unchanged" => bench_op_flow_unchanged(config, body),
        "flow_translated" => bench_op_flow_translated(config, body),
        _ => return Err(format!("unknown operation {op:?}; one of {OPS:?}")),
    })
}

/// What an operation did with a body, so a benchmark never silently times an error path.
fn describe(op: &str, config: &Config, body: &[u8]) -> String {
    let step = match op {
        "scan" => {
            return match top_level_fields(body, ["model", "stream"]) {
                Ok([model, _]) => format!(
                    "model={}",
                    model.map_or("<none>".into(), |m| String::from_utf8_lossy(m).into_owned())
                ),
                Err(e) => format!("error: {e}"),
            }
        }
        "serde_value" => {
            return match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(v) => format!(
                    "model={}",
                    v.get("model").unwrap_or(&serde_json::Value::Null)
                ),
                Err(e) => format!("error: {e}"),
            }
        }
        "serde_ignored" => {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => "valid JSON".into(),
                Err(e) => format!("error: {e}"),
            }
        }
        "flow_unchanged" | "flow_translated" => flow::body(config, &head(), body),
        _ => return format!("unknown operation {op:?}"),
    };
    match step {
        BodyStep::Pass(reason) => format!("pass ({})", reason.as_str()),
        BodyStep::Reject(reply) => format!("reject {} ({})", reply.status, reply.reason),
        BodyStep::Route(routed, None) => format!(
            "route {:?} to {} (body unchanged)",
            routed.plan.verdict,
            routed.upstream_path()
        ),
        BodyStep::Route(routed, Some((new_body, _))) => format!(
            "route {:?} to {} (body translated, {} bytes)",
            routed.plan.verdict,
            routed.upstream_path(),
            new_body.len()
        ),
    }
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Median wall time of each operation on one body: after a warm-up (V8
/// tiers its wasm code up), samples of enough iterations to last about 4 ms,
/// interleaved across operations so that a noisy moment on a shared machine
/// hits all of them alike.
fn time_file(config: &Config, path: &str, samples: usize) -> Result<Vec<String>, String> {
    let mut bodies = Vec::new();
    let mut iters = Vec::new();
    for op in OPS {
        let body = prepare(op, read(path)?)?;
        let warm = Instant::now();
        while {
            black_box(run(op, config, &body)?);
            warm.elapsed() < Duration::from_millis(20)
        } {}
        // Double the batch until it lasts 1 ms, then size samples to ~4 ms.
        let mut n = 1u32;
        let per_sample = loop {
            let start = Instant::now();
            for _ in 0..n {
                black_box(run(op, config, &body)?);
            }
            let took = start.elapsed();
            if took >= Duration::from_millis(1) || n >= 1 << 24 {
                let scaled = f64::from(n) * 4e-3 / took.as_secs_f64().max(1e-9);
                break (scaled as u32).max(1);
            }
            n *= 2;
        };
        iters.push(per_sample);
        bodies.push(body);
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); OPS.len()];
    for _ in 0..samples {
        for (i, op) in OPS.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..iters[i] {
                black_box(run(op, config, &bodies[i])?);
            }
            times[i].push(start.elapsed().as_nanos() as f64 / f64::from(iters[i]));
        }
    }
    let mut lines = Vec::new();
    for (i, op) in OPS.iter().enumerate() {
        let t = &mut times[i];
        t.sort_by(f64::total_cmp);
        lines.push(format!(
            r#"{{"file":{},"bytes":{},"op":"{op}","ns_median":{:.1},"ns_min":{:.1},"samples":{samples},"iters":{}}}"#,
            json_string(path),
            bodies[i].len(),
            t[t.len() / 2],
            t[0],
            iters[i]
        ));
    }
    Ok(lines)
}

fn main_result() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = config()?;
    match args.first().map(String::as_str) {
        Some("check") => {
            for path in &args[1..] {
                for op in OPS {
                    let body = prepare(op, read(path)?)?;
                    println!(
                        r#"{{"file":{},"op":"{op}","outcome":{}}}"#,
                        json_string(path),
                        json_string(&describe(op, &config, &body))
                    );
                }
            }
        }
        Some("once") => {
            let [_, op, path] = args.as_slice() else {
                return Err("usage: scan-bench once OP FILE".into());
            };
            let body = prepare(op, read(path)?)?;
            println!("{}", run(op, &config, &body)?);
        }
        Some("time") => {
            let mut samples = 15;
            let mut files = Vec::new();
            let mut rest = args[1..].iter();
            while let Some(arg) = rest.next() {
                if arg == "--samples" {
                    samples = rest
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|n| *n > 0)
                        .ok_or("--samples takes a positive number")?;
                } else {
                    files.push(arg.clone());
                }
            }
            for path in &files {
                for line in time_file(&config, path, samples)? {
                    println!("{line}");
                }
            }
        }
        _ => {
            return Err(
                "usage: scan-bench check FILE... | once OP FILE | time [--samples N] FILE..."
                    .into(),
            )
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match main_result() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scan-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
