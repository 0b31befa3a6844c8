//! The glue against a fake host: the `Action` each callback returns, the
//! header and body writes, local replies and counters, for each kind of
//! request and response. The fake behaves like Envoy where it matters: a
//! body callback sees everything buffered so far, and writing a body before
//! any body callback is a test failure (Envoy has no buffer then and
//! crashes).

use super::abi::{Action, BufferType, MapType, Status};
use super::host::{HeaderMap, Host};
use super::metrics::Metrics;
use super::Router;
use crate::config::Config;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A local reply: status, headers, body.
type LocalReply = (u16, Vec<(String, String)>, Vec<u8>);
/// A callout: cluster and headers.
type Callout = (String, Vec<(String, String)>);

#[derive(Default)]
struct Fake {
    request_headers: RefCell<Vec<(String, String)>>,
    response_headers: RefCell<Vec<(String, String)>>,
    /// `None` until the first body callback (Envoy has no buffer before).
    request_body: RefCell<Option<Vec<u8>>>,
    response_body: RefCell<Option<Vec<u8>>>,
    replies: RefCell<Vec<LocalReply>>,
    counter_names: RefCell<Vec<String>>,
    counts: RefCell<BTreeMap<String, u64>>,
    header_reads: RefCell<usize>,
    /// Request header writes (each clears Envoy's route cache).
    request_header_writes: RefCell<usize>,
    /// Response header writes.
    response_header_writes: RefCell<usize>,
    /// Reads of the clock.
    clock_reads: RefCell<usize>,
    /// Callouts made: cluster and headers.
    callouts: RefCell<Vec<Callout>>,
    /// The callout answer being delivered: status and body.
    call_answer: RefCell<(Option<String>, Vec<u8>)>,
    resumed: RefCell<usize>,
    /// The VM's shared data.
    shared: RefCell<BTreeMap<String, Vec<u8>>>,
}

fn map(fake: &Fake, map: MapType) -> &RefCell<Vec<(String, String)>> {
    match map {
        MapType::HttpRequestHeaders => &fake.request_headers,
        MapType::HttpResponseHeaders => &fake.response_headers,
        other => panic!("unexpected map {other:?}"),
    }
}

fn buffer(fake: &Fake, buffer: BufferType) -> &RefCell<Option<Vec<u8>>> {
    match buffer {
        BufferType::HttpRequestBody => &fake.request_body,
        BufferType::HttpResponseBody => &fake.response_body,
        other => panic!("unexpected buffer {other:?}"),
    }
}

impl Host for Rc<Fake> {
    fn header(&self, m: MapType, name: &str) -> Option<Vec<u8>> {
        *self.header_reads.borrow_mut() += 1;
        map(self, m)
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone().into_bytes())
    }

    fn header_map(&self, m: MapType) -> HeaderMap {
        *self.header_reads.borrow_mut() += 1;
        HeaderMap::to_wire(&map(self, m).borrow())
    }

    fn set_header(&self, m: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
        match m {
            MapType::HttpRequestHeaders => *self.request_header_writes.borrow_mut() += 1,
            _ => *self.response_header_writes.borrow_mut() += 1,
        }
        let mut headers = map(self, m).borrow_mut();
        headers.retain(|(n, _)| n != name);
        if let Some(v) = value {
            headers.push((name.to_owned(), v.to_owned()));
        }
        Ok(())
    }

    fn body(&self, b: BufferType, size: usize) -> Result<Vec<u8>, Status> {
        let body = buffer(self, b).borrow();
        let body = body.as_ref().ok_or(Status::NotFound)?;
        Ok(body[..size.min(body.len())].to_vec())
    }

    fn set_body(&self, b: BufferType, size: usize, value: &[u8]) -> Result<(), Status> {
        let mut body = buffer(self, b).borrow_mut();
        let Some(body) = body.as_mut() else {
            panic!("{b:?} written before any body callback: Envoy would crash");
        };
        assert_eq!(size, body.len(), "a write must replace the whole buffer");
        *body = value.to_vec();
        Ok(())
    }

    fn reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        self.replies
            .borrow_mut()
            .push((status, headers, body.to_vec()));
    }

    fn unix_time(&self) -> u64 {
        *self.clock_reads.borrow_mut() += 1;
        1_796_169_600 // 2026-12-02
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        let mut names = self.counter_names.borrow_mut();
        names.push(name.to_owned());
        u32::try_from(names.len() - 1).ok()
    }

    fn increment(&self, id: u32) {
        let name = self.counter_names.borrow()[id as usize].clone();
        *self.counts.borrow_mut().entry(name).or_default() += 1;
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        (path == ["xds", "cluster_name"]).then(|| b"gemini".to_vec())
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        _timeout: std::time::Duration,
    ) -> Result<u32, Status> {
        let headers = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let mut callouts = self.callouts.borrow_mut();
        callouts.push((cluster.to_owned(), headers));
        Ok(callouts.len() as u32)
    }

    fn call_response(&self, size: usize) -> (Option<String>, Vec<u8>) {
        let (status, body) = self.call_answer.borrow().clone();
        (status, body[..size.min(body.len())].to_vec())
    }

    fn resume_response(&self) {
        *self.resumed.borrow_mut() += 1;
    }

    fn shared_get(&self, key: &str) -> Option<Vec<u8>> {
        self.shared.borrow().get(key).cloned()
    }

    fn shared_set(&self, key: &str, value: &[u8]) -> bool {
        self.shared
            .borrow_mut()
            .insert(key.to_owned(), value.to_vec());
        true
    }
}

/// One request through the glue.
struct Exchange {
    fake: Rc<Fake>,
    router: Router<Rc<Fake>>,
    /// The response body passed on so far: what the client gets of a
    /// streamed response (a chunk let go with `Continue` leaves Envoy's
    /// buffer; one held stays and the next is added to it).
    sent: Vec<u8>,
}

impl Exchange {
    /// An exchange under `config`, with model migration off unless the
    /// configuration sets it (the glue's mechanics are tested on Imagen,
    /// which the lifecycle table sends to its replacement).
    fn new(config: &str) -> Exchange {
        let mut value: Value =
            serde_json::from_str(if config.is_empty() { "{}" } else { config }).unwrap();
        if value.get("migrate").is_none() {
            value["migrate"] = Value::String("never".into());
        }
        let fake = Rc::new(Fake::default());
        let config = Rc::new(Config::from_bytes(value.to_string().as_bytes()).unwrap());
        let metrics = Rc::new(Metrics::define(&fake));
        let router = Router::new(1, config, metrics, Rc::default(), Rc::clone(&fake));
        Exchange {
            fake,
            router,
            sent: Vec::new(),
        }
    }

    fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], eos: bool) -> Action {
        let mut all = vec![
            (":method".to_owned(), method.to_owned()),
            (":path".to_owned(), path.to_owned()),
        ];
        all.extend(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        *self.fake.request_headers.borrow_mut() = all;
        self.router.on_http_request_headers(0, eos)
    }

    /// Adds a request chunk to the buffer, as Envoy does before the callback.
    fn request_chunk(&mut self, data: &[u8], eos: bool) -> Action {
        let size = {
            let mut body = self.fake.request_body.borrow_mut();
            let body = body.get_or_insert_with(Vec::new);
            body.extend_from_slice(data);
            body.len()
        };
        self.router.on_http_request_body(size, eos)
    }

    fn response(&mut self, status: u16, headers: &[(&str, &str)], eos: bool) -> Action {
        let mut all = vec![(":status".to_owned(), status.to_string())];
        all.extend(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        *self.fake.response_headers.borrow_mut() = all;
        self.router.on_http_response_headers(0, eos)
    }

    fn response_chunk(&mut self, data: &[u8], eos: bool) -> Action {
        let size = {
            let mut body = self.fake.response_body.borrow_mut();
            let body = body.get_or_insert_with(Vec::new);
            body.extend_from_slice(data);
            body.len()
        };
        let action = self.router.on_http_response_body(size, eos);
        if action == Action::Continue {
            if let Some(body) = self.fake.response_body.borrow_mut().as_mut() {
                self.sent.append(body);
            }
        }
        action
    }

    /// A fresh exchange that sent `body` for `path` with `headers` and
    /// got it routed.
    fn routed(config: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Exchange {
        let mut x = Exchange::new(config);
        assert_eq!(x.request("POST", path, headers, false), Action::Pause);
        assert_eq!(x.request_chunk(body, true), Action::Continue);
        x
    }

    fn request_body(&self) -> Value {
        serde_json::from_slice(
            self.fake
                .request_body
                .borrow()
                .as_deref()
                .unwrap_or_default(),
        )
        .unwrap_or_default()
    }

    fn request_header(&self, name: &str) -> Option<String> {
        self.fake
            .header(MapType::HttpRequestHeaders, name)
            .map(|v| String::from_utf8(v).unwrap())
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.fake
            .header(MapType::HttpResponseHeaders, name)
            .map(|v| String::from_utf8(v).unwrap())
    }

    /// What the client got of the response body so far.
    fn response_body(&self) -> Vec<u8> {
        let mut body = self.sent.clone();
        body.extend(self.fake.response_body.borrow().clone().unwrap_or_default());
        body
    }

    fn count(&self, name: &str) -> u64 {
        self.fake.counts.borrow().get(name).copied().unwrap_or(0)
    }

    fn replies(&self) -> Vec<LocalReply> {
        self.fake.replies.borrow().clone()
    }
}

const CHAT: &str = "/v1beta/openai/chat/completions";
const BEARER: (&str, &str) = ("authorization", "Bearer AIzaTESTKEY123");
const IMAGEN_CHAT: &[u8] =
    br#"{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"a fox"}]}"#;
const PREDICTIONS: &[u8] =
    br#"{"predictions":[{"mimeType":"image/png","bytesBase64Encoded":"iVBORw0KGgo="}]}"#;

#[test]
fn an_unrouted_request_reads_the_header_map_once_and_passes() {
    let mut x = Exchange::new("");
    assert_eq!(
        x.request("GET", "/v1beta/models", &[BEARER], true),
        Action::Continue
    );
    assert_eq!(*x.fake.header_reads.borrow(), 1, "the whole map, once");
    assert_eq!(x.count("gemini_router.passthrough.unrouted"), 1);
    assert_eq!(x.count("gemini_router.requests_total"), 1);
    assert_eq!(x.response(200, &[], false), Action::Continue);
    assert_eq!(x.response_chunk(b"{}", true), Action::Continue);
}

#[test]
fn a_chat_request_is_held_until_its_body_ends_then_routed() {
    let mut x = Exchange::new("");
    let body = br#"{"model":"gemini-3.5-flash","messages":[]}"#;
    assert_eq!(
        x.request("POST", CHAT, &[BEARER, ("accept-encoding", "gzip")], false),
        Action::Pause
    );
    assert_eq!(x.request_chunk(&body[..10], false), Action::Pause);
    assert_eq!(x.request_chunk(&body[10..], true), Action::Continue);
    assert_eq!(x.request_header(":path").as_deref(), Some(CHAT));
    assert_eq!(x.request_header("accept-encoding"), None);
    assert_eq!(x.count("gemini_router.unchanged.gemini"), 1);
    // A 200 passes untouched, and only its status is read.
    let reads = *x.fake.header_reads.borrow();
    assert_eq!(
        x.response(200, &[("content-type", "application/json")], false),
        Action::Continue
    );
    assert_eq!(*x.fake.header_reads.borrow(), reads + 1);
    assert_eq!(x.response_chunk(b"{}", true), Action::Continue);
    assert_eq!(x.response_body(), b"{}");
}

#[test]
fn accept_encoding_is_left_to_a_route_that_removes_it() {
    // `route_removes_accept_encoding`: the route asks the upstream for an
    // uncompressed answer, so a chat forwarded unchanged gets no header
    // write (which would have Envoy match its route again).
    let mut x = Exchange::new(r#"{"route_removes_accept_encoding":true}"#);
    let body = br#"{"model":"gemini-3.5-flash","messages":[]}"#;
    assert_eq!(
        x.request("POST", CHAT, &[BEARER, ("accept-encoding", "gzip")], false),
        Action::Pause
    );
    assert_eq!(x.request_chunk(body, true), Action::Continue);
    assert_eq!(x.count("gemini_router.unchanged.gemini"), 1);
    assert_eq!(x.request_header("accept-encoding").as_deref(), Some("gzip"));
    assert_eq!(*x.fake.request_header_writes.borrow(), 0);
    assert_eq!(
        x.response(404, &[("content-type", "application/json")], false),
        Action::Pause,
        "an uncompressed error is held to be rewritten"
    );
    assert!(
        x.router.metrics.first_kept_encoding(),
        "an uncompressed answer shows nothing wrong"
    );
    // An answer that arrives compressed all the same shows the route
    // keeping the header: logged the first time in the VM only.
    let mut y = Exchange::new(r#"{"route_removes_accept_encoding":true}"#);
    y.request("POST", CHAT, &[BEARER, ("accept-encoding", "gzip")], false);
    y.request_chunk(body, true);
    assert_eq!(
        y.response(404, &[("content-encoding", "gzip")], false),
        Action::Continue,
        "a compressed error goes on, its body unread"
    );
    assert!(
        !y.router.metrics.first_kept_encoding(),
        "the compressed answer was the first"
    );
}

#[test]
fn a_translated_request_leaves_accept_encoding_to_the_route_too() {
    let mut x = Exchange::new(r#"{"route_removes_accept_encoding":true}"#);
    assert_eq!(
        x.request("POST", CHAT, &[BEARER, ("accept-encoding", "gzip")], false),
        Action::Pause
    );
    assert_eq!(x.request_chunk(IMAGEN_CHAT, true), Action::Continue);
    assert_eq!(
        x.request_header(":path").as_deref(),
        Some("/v1beta/models/imagen-4.0-generate-001:predict")
    );
    assert_eq!(x.request_header("accept-encoding").as_deref(), Some("gzip"));
}

#[test]
fn a_chat_request_without_accept_encoding_reads_once_and_writes_no_header() {
    let mut x = Exchange::new("");
    let body = br#"{"model":"gemini-3.5-flash","messages":[]}"#;
    assert_eq!(x.request("POST", CHAT, &[BEARER], false), Action::Pause);
    assert_eq!(*x.fake.header_reads.borrow(), 1, "the whole map, once");
    assert_eq!(x.request_chunk(body, true), Action::Continue);
    assert_eq!(x.count("gemini_router.unchanged.gemini"), 1);
    assert_eq!(
        *x.fake.request_header_writes.borrow(),
        0,
        "nothing to remove, nothing to set"
    );
    assert_eq!(
        *x.fake.clock_reads.borrow(),
        0,
        "a model the lifecycle table does not list, not translated"
    );
}

#[test]
fn a_translated_exchange_rewrites_both_bodies() {
    let mut x = Exchange::new("");
    assert_eq!(
        x.request("POST", CHAT, &[BEARER, ("content-length", "80")], false),
        Action::Pause
    );
    assert_eq!(x.request_chunk(IMAGEN_CHAT, true), Action::Continue);
    assert_eq!(
        x.request_header(":path").as_deref(),
        Some("/v1beta/models/imagen-4.0-generate-001:predict")
    );
    assert_eq!(
        x.request_header("x-goog-api-key").as_deref(),
        Some("AIzaTESTKEY123")
    );
    assert_eq!(
        (
            x.request_header("authorization"),
            x.request_header("content-length")
        ),
        (None, None)
    );
    let sent: Value =
        serde_json::from_slice(x.fake.request_body.borrow().as_deref().unwrap()).unwrap();
    assert_eq!(sent["instances"][0]["prompt"], "a fox");
    assert_eq!(x.count("gemini_router.translated"), 1);
    assert_eq!(x.count("gemini_router.rewritten.imagen"), 1);

    assert_eq!(
        x.response(200, &[("content-length", "80")], false),
        Action::Pause
    );
    assert_eq!(x.response_chunk(&PREDICTIONS[..20], false), Action::Pause);
    assert_eq!(x.response_chunk(&PREDICTIONS[20..], true), Action::Continue);
    let answer: Value = serde_json::from_slice(&x.response_body()).unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "![image](data:image/png;base64,iVBORw0KGgo=)"
    );
    assert_eq!(x.response_header("content-length"), None);
    assert_eq!(
        x.response_header("content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn a_translated_exchange_writes_only_the_headers_that_change() {
    let json = ("content-type", "application/json");
    let sent = [BEARER, json, ("content-length", "80")];
    let mut x = Exchange::routed("", CHAT, &sent, IMAGEN_CHAT);
    // :path, content-length, and the key moved from authorization to
    // x-goog-api-key; content-type already says JSON.
    assert_eq!(*x.fake.request_header_writes.borrow(), 4);
    assert_eq!(
        x.request_header("content-type").as_deref(),
        Some("application/json")
    );

    let length = PREDICTIONS.len().to_string();
    let upstream = [json, ("content-length", length.as_str())];
    assert_eq!(x.response(200, &upstream, false), Action::Pause);
    assert_eq!(x.response_chunk(PREDICTIONS, true), Action::Continue);
    // The stale length goes and the model's lifecycle notice comes
    // (deprecation, sunset, replacement); :status, content-type and the
    // absent content-encoding are already what the answer needs.
    assert_eq!(*x.fake.response_header_writes.borrow(), 4);
    assert!(x.response_header("sunset").is_some());
    assert_eq!(x.response_header("content-length"), None);
    assert_eq!(x.response_header(":status").as_deref(), Some("200"));
    assert_eq!(
        x.response_header("content-type").as_deref(),
        Some("application/json")
    );

    // Another content type on either side is written.
    let text = ("content-type", "application/json; charset=utf-8");
    let mut y = Exchange::routed("", CHAT, &[BEARER, text], IMAGEN_CHAT);
    assert_eq!(
        y.request_header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        y.response(200, &[("content-type", "text/plain")], false),
        Action::Pause
    );
    assert_eq!(y.response_chunk(PREDICTIONS, true), Action::Continue);
    assert_eq!(
        y.response_header("content-type").as_deref(),
        Some("application/json")
    );
}

#[test]
fn request_trailers_end_the_body() {
    let mut x = Exchange::new("");
    assert_eq!(x.request("POST", CHAT, &[BEARER], false), Action::Pause);
    assert_eq!(x.request_chunk(IMAGEN_CHAT, false), Action::Pause);
    assert_eq!(x.router.on_http_request_trailers(1), Action::Continue);
    assert_eq!(x.count("gemini_router.translated"), 1);
}

#[test]
fn trailers_without_a_body_never_write_one() {
    // A native request that needs translation, ended by trailers with no
    // data: nothing to translate, and no buffer to write into.
    let mut x = Exchange::new("");
    let path = "/v1beta/models/imagen-4.0-generate-001:generateContent";
    assert_eq!(
        x.request("POST", path, &[("x-goog-api-key", "AIzaTESTKEY123")], false),
        Action::Pause
    );
    assert_eq!(x.router.on_http_request_trailers(1), Action::Pause);
    let replies = x.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].0, 400);
    assert_eq!(x.count("gemini_router.translate_errors"), 1);
}

#[test]
fn local_replies_for_refused_requests() {
    type Case<'a> = (
        &'a str,
        &'a [u8],
        Vec<(&'a str, &'a str)>,
        u16,
        &'a str,
        &'a str,
    );
    let cases: [Case<'_>; 3] = [
        (
            "unsafe model",
            br#"{"model":"../../v1beta/files"}"#,
            vec![BEARER],
            400,
            "invalid_model",
            "gemini_router.rejected.invalid_model",
        ),
        (
            "two keys",
            br#"{"model":"gemini-3.5-flash"}"#,
            vec![
                ("authorization", "Bearer A1234567"),
                ("x-goog-api-key", "B1234567"),
            ],
            400,
            "ambiguous_credentials",
            "gemini_router.rejected.ambiguous_credentials",
        ),
        (
            "two authorization lines",
            br#"{"model":"gemini-3.5-flash"}"#,
            vec![
                ("authorization", "Bearer A1234567"),
                ("authorization", "Bearer B1234567"),
            ],
            400,
            "ambiguous_credentials",
            "gemini_router.rejected.ambiguous_credentials",
        ),
    ];
    for (name, body, headers, status, code, counter) in cases {
        let mut x = Exchange::new("");
        let action = match x.request("POST", CHAT, &headers, false) {
            Action::Pause if x.replies().is_empty() => x.request_chunk(body, true),
            other => other,
        };
        assert_eq!(action, Action::Pause, "{name}");
        let replies = x.replies();
        assert_eq!(replies.len(), 1, "{name}");
        assert_eq!(replies[0].0, status, "{name}");
        let error: Value = serde_json::from_slice(&replies[0].2).unwrap();
        assert_eq!(error["error"]["code"], code, "{name}");
        assert_eq!(x.count(counter), 1, "{name}");
        assert!(
            !String::from_utf8_lossy(&replies[0].2).contains("1234567"),
            "{name}: key echoed"
        );
    }
}

#[test]
fn an_empty_error_is_replaced_keeping_upstream_headers() {
    let mut x = Exchange::new("");
    x.request("POST", CHAT, &[BEARER], false);
    x.request_chunk(br#"{"model":"gemini-3.5-flash"}"#, true);
    let action = x.response(
        404,
        &[
            ("content-length", "0"),
            ("retry-after", "7"),
            ("content-encoding", "gzip"),
        ],
        true,
    );
    assert_eq!(action, Action::Pause);
    let replies = x.replies();
    assert_eq!(replies.len(), 1);
    let (status, headers, body) = &replies[0];
    assert_eq!(*status, 404);
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"retry-after") && names.contains(&"x-gemini-router-hint"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"content-encoding") && !names.contains(&"content-length"),
        "{names:?}"
    );
    let error: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(error["error"]["type"], "not_found_error");
    assert_eq!(x.count("gemini_router.annotated"), 1);
}

#[test]
fn an_error_of_unannounced_length_above_the_bound_is_answered_from_its_start() {
    let mut x = Exchange::new("");
    x.request("POST", CHAT, &[BEARER], false);
    x.request_chunk(br#"{"model":"gemini-3.5-flash"}"#, true);
    assert_eq!(x.response(500, &[], false), Action::Pause);
    assert_eq!(x.response_chunk(&[b'x'; 40_000], false), Action::Pause);
    assert_eq!(
        x.response_body(),
        b"",
        "each held chunk leaves Envoy's buffer"
    );
    assert_eq!(
        x.response_chunk(&[b'y'; 40_000], false),
        Action::Continue,
        "answered at once, not held until the upstream ends"
    );
    let error: Value = serde_json::from_slice(&x.response_body()).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("upstream answered 500: xxxx"),
        "{message}"
    );
    assert!(message.len() < 2_000, "only the start is quoted");
    assert!(x.response_header("x-gemini-router-hint").is_some());
    assert_eq!(x.response_header(":status").as_deref(), Some("500"));
    let sent = x.response_body();
    for (chunk, end) in [(&[b'z'; 70_000][..], false), (b"z", true)] {
        assert_eq!(
            x.response_chunk(chunk, end),
            Action::Continue,
            "the rest is never held"
        );
        assert_eq!(x.response_body(), sent, "the rest is dropped as it comes");
    }
    assert_eq!(x.count("gemini_router.annotated"), 1);
}

#[test]
fn an_error_announced_above_the_bound_streams_untouched_with_headers() {
    let mut x = Exchange::new("");
    x.request("POST", CHAT, &[BEARER], false);
    x.request_chunk(br#"{"model":"gemini-3.5-flash"}"#, true);
    assert_eq!(
        x.response(500, &[("content-length", "80001")], false),
        Action::Continue
    );
    assert_eq!(x.response_chunk(&[b'x'; 80_001], true), Action::Continue);
    assert_eq!(x.response_body().len(), 80_001);
    assert!(x.response_header("x-gemini-router-hint").is_some());
}

#[test]
fn a_translated_answer_above_max_body_bytes_is_dropped_for_a_502() {
    let mut x = Exchange::new(r#"{"max_body_bytes": 200}"#);
    x.request("POST", CHAT, &[BEARER], false);
    assert_eq!(x.request_chunk(IMAGEN_CHAT, true), Action::Continue);
    assert_eq!(
        x.response(200, &[("content-encoding", "identity")], false),
        Action::Pause
    );
    assert_eq!(x.response_chunk(&[b'a'; 150], false), Action::Pause);
    assert_eq!(
        x.response_chunk(&[b'b'; 150], false),
        Action::Continue,
        "answered at once, not held until the upstream ends"
    );
    assert_eq!(x.response_header(":status").as_deref(), Some("502"));
    let error: Value = serde_json::from_slice(&x.response_body()).unwrap();
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("above max_body_bytes (200)"));
    let sent = x.response_body();
    for (chunk, end) in [(&[b'c'; 150][..], false), (b"", true)] {
        assert_eq!(x.response_chunk(chunk, end), Action::Continue);
        assert_eq!(x.response_body(), sent, "the upstream's bytes are dropped");
    }
    assert_eq!(x.count("gemini_router.translate_errors"), 1);
}

#[test]
fn response_trailers_end_the_body_and_without_one_replace_it() {
    let mut x = Exchange::new("");
    x.request("POST", CHAT, &[BEARER], false);
    x.request_chunk(IMAGEN_CHAT, true);
    assert_eq!(x.response(200, &[], false), Action::Pause);
    assert_eq!(x.response_chunk(PREDICTIONS, false), Action::Pause);
    assert_eq!(x.router.on_http_response_trailers(1), Action::Continue);
    let answer: Value = serde_json::from_slice(&x.response_body()).unwrap();
    assert_eq!(answer["object"], "chat.completion");

    let mut y = Exchange::new("");
    y.request("POST", CHAT, &[BEARER], false);
    y.request_chunk(br#"{"model":"gemini-3.5-flash"}"#, true);
    assert_eq!(y.response(503, &[], false), Action::Pause);
    assert_eq!(y.router.on_http_response_trailers(1), Action::Pause);
    assert_eq!(y.replies()[0].0, 503);
}

#[test]
fn a_shut_down_chat_model_is_spliced_to_its_replacement() {
    let mut x = Exchange::new(r#"{"migrate":"after_shutdown"}"#);
    let body = br#"{"messages":[{"role":"user","content":"hi"}],"model":"models/gemini-2.5-flash","stream":true}"#;
    assert_eq!(x.request("POST", CHAT, &[BEARER], false), Action::Pause);
    assert_eq!(x.request_chunk(body, true), Action::Continue);
    let sent = x.fake.request_body.borrow().clone().unwrap();
    assert_eq!(
        sent,
        br#"{"messages":[{"role":"user","content":"hi"}],"model":"gemini-3.8-flash","stream":true}"#.to_vec(),
        "only the model value changes"
    );
    assert_eq!(x.request_header(":path").as_deref(), Some(CHAT));
    assert_eq!(x.request_header("content-length"), None);
    assert_eq!(x.count("gemini_router.migrated.gemini"), 1);
    assert_eq!(x.count("gemini_router.translated"), 0);
    assert_eq!(x.response(200, &[], false), Action::Continue);
    assert_eq!(
        x.response_header("x-gemini-router-requested-model")
            .as_deref(),
        Some("gemini-2.5-flash")
    );
    assert_eq!(
        x.response_header("x-gemini-router-served-model").as_deref(),
        Some("gemini-3.8-flash")
    );
    assert_eq!(
        x.response_header("sunset").as_deref(),
        Some("Tue, 01 Dec 2026 00:00:00 GMT")
    );
}

#[test]
fn a_shut_down_imagen_model_is_served_by_its_gemini_replacement() {
    let mut x = Exchange::new(r#"{"migrate":"after_shutdown"}"#);
    assert_eq!(x.request("POST", CHAT, &[BEARER], false), Action::Pause);
    assert_eq!(x.request_chunk(IMAGEN_CHAT, true), Action::Continue);
    assert_eq!(
        x.request_header(":path").as_deref(),
        Some("/v1beta/models/gemini-3.1-flash-image:generateContent")
    );
    assert_eq!(x.count("gemini_router.migrated.imagen"), 1);
    assert_eq!(x.count("gemini_router.translated"), 1);
}

#[test]
fn a_404_reads_the_live_catalogue_once_per_key() {
    let page = br#"{"models":[{"name":"models/gemini-3.5-flash","supportedGenerationMethods":["generateContent"]}]}"#;
    let not_found = br#"[{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}]"#;
    let cache = Rc::new(RefCell::new(crate::catalogue::Cache::default()));
    for round in 0..2 {
        let mut x = Exchange::new("");
        x.router.catalogues = Rc::clone(&cache);
        let body = br#"{"model":"gemini-3.5-flsh","messages":[{"role":"user","content":"hi"}]}"#;
        x.request(
            "POST",
            CHAT,
            &[BEARER, (":authority", "generativelanguage.googleapis.com")],
            false,
        );
        x.request_chunk(body, true);
        assert_eq!(x.response(404, &[], false), Action::Pause);
        let action = x.response_chunk(not_found, true);
        if round == 0 {
            assert_eq!(action, Action::Pause, "held while the catalogue is read");
            let callouts = x.fake.callouts.borrow().clone();
            assert_eq!(callouts.len(), 1);
            // The fake's tokens count its callouts: this one is 1.
            assert!(x.router.awaits(1) && !x.router.awaits(2));
            let (cluster, headers) = &callouts[0];
            assert_eq!(cluster, "gemini");
            assert!(
                headers.contains(&(":path".into(), "/v1beta/models?pageSize=1000".into())),
                "{headers:?}"
            );
            assert!(headers.contains(&("x-goog-api-key".into(), "AIzaTESTKEY123".into())));
            *x.fake.call_answer.borrow_mut() = (Some("200".into()), page.to_vec());
            x.router.on_http_call_response(page.len());
            assert_eq!(*x.fake.resumed.borrow(), 1);
            assert!(!x.router.awaits(1), "answered");
            assert_eq!(x.count("gemini_router.catalogue.fetched"), 1);
        } else {
            assert_eq!(
                action,
                Action::Continue,
                "the second 404 for the key uses the cache"
            );
            assert!(x.fake.callouts.borrow().is_empty());
            assert_eq!(x.count("gemini_router.catalogue.cached"), 1);
        }
        let hint = x.response_header("x-gemini-router-hint").unwrap();
        assert!(
            hint.contains("gemini-3.5-flsh is not among the 1 models this key can use (GET /v1beta/models); the nearest that serve :generateContent: gemini-3.5-flash."),
            "{hint}"
        );
        let error: Value = serde_json::from_slice(&x.response_body()).unwrap();
        assert_eq!(error["error"]["type"], "not_found_error");
    }
}

#[test]
fn a_failed_catalogue_read_still_gives_the_static_hint() {
    let mut x = Exchange::new("");
    x.request("POST", CHAT, &[BEARER, (":authority", "g")], false);
    x.request_chunk(br#"{"model":"gemini-3.5-flsh"}"#, true);
    x.response(404, &[], false);
    assert_eq!(x.response_chunk(b"{}", true), Action::Pause);
    // A timeout: no headers, no body.
    x.router.on_http_call_response(0);
    assert_eq!(*x.fake.resumed.borrow(), 1);
    assert_eq!(x.count("gemini_router.catalogue.failed"), 1);
    let hint = x.response_header("x-gemini-router-hint").unwrap();
    assert!(
        hint.contains("usually means the model is retired, misspelled"),
        "{hint}"
    );
}

#[test]
fn a_model_no_rule_matches_is_classified_by_the_cached_catalogue() {
    let mut x = Exchange::new(r#"{"builtin_rules":false}"#);
    // A first 404 reads the key's catalogue, which lists acme-draw for :predict.
    x.request("POST", CHAT, &[BEARER, (":authority", "g")], false);
    x.request_chunk(br#"{"model":"acme-drw"}"#, true);
    x.response(404, &[], false);
    x.response_chunk(b"{}", true);
    let page =
        br#"{"models":[{"name":"models/acme-draw","supportedGenerationMethods":["predict"]}]}"#;
    *x.fake.call_answer.borrow_mut() = (Some("200".into()), page.to_vec());
    x.router.on_http_call_response(page.len());
    // The next request with that key, for acme-draw (no rule: default gemini).
    let mut y = Exchange::new(r#"{"builtin_rules":false}"#);
    y.router.catalogues = Rc::clone(&x.router.catalogues);
    y.request("POST", CHAT, &[BEARER], false);
    let body = br#"{"model":"acme-draw","messages":[{"role":"user","content":"a fox"}]}"#;
    assert_eq!(y.request_chunk(body, true), Action::Continue);
    assert_eq!(
        y.request_header(":path").as_deref(),
        Some("/v1beta/models/acme-draw:predict")
    );
    assert_eq!(y.count("gemini_router.rewritten.imagen"), 1);
}

const AGENT_CHAT: &[u8] = br#"{"model":"gemini-3.5-flash","tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[{"role":"user","content":"weather in Paris?"}]}"#;

/// The second turn of the agent loop above, with the tool call `id` as an
/// agent framework rebuilds it (no `extra_content`).
fn second_turn(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"model": "gemini-3.5-flash",
        "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        "messages": [{"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
                "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": id, "content": "sunny"}]}))
    .unwrap()
}

/// A tool-call answer whose thought signature is `signature`.
fn tool_answer(signature: &str) -> Vec<u8> {
    format!(
        r#"{{"choices":[{{"index":0,"message":{{"role":"assistant","tool_calls":[{{"id":"call-1","type":"function","function":{{"name":"get_weather","arguments":"{{}}"}},"extra_content":{{"google":{{"thought_signature":"{signature}"}}}}}}]}},"finish_reason":"tool_calls"}}]}}"#
    )
    .into_bytes()
}

fn sent_signature(x: &Exchange) -> Value {
    x.request_body()["messages"][1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
        .clone()
}

#[test]
fn thought_signatures_are_remembered_from_answers_and_put_back() {
    let json = [("content-type", "application/json")];
    let mut first = Exchange::routed("", CHAT, &[BEARER], AGENT_CHAT);
    assert_eq!(first.response(200, &json, false), Action::Continue);
    let answer = &tool_answer("U0lHLTE=")[..];
    assert_eq!(first.response_chunk(&answer[..30], false), Action::Continue);
    assert_eq!(first.response_chunk(&answer[30..], true), Action::Continue);
    assert_eq!(first.response_body(), answer, "the answer passes untouched");
    assert_eq!(first.count("gemini_router.signatures.stored"), 1);

    // The same VM's shared data serves the next request (another context).
    let shared = first.fake.shared.borrow().clone();
    let turn = |headers: &[(&str, &str)], id: &str| {
        let mut x = Exchange::new("");
        *x.fake.shared.borrow_mut() = shared.clone();
        assert_eq!(x.request("POST", CHAT, headers, false), Action::Pause);
        assert_eq!(x.request_chunk(&second_turn(id), true), Action::Continue);
        x
    };
    let restored = turn(&[BEARER], "call-1");
    assert_eq!(sent_signature(&restored), "U0lHLTE=");
    assert_eq!(restored.request_header("content-length"), None);
    assert_eq!(restored.count("gemini_router.signatures.restored"), 1);

    let unknown = turn(&[BEARER], "call-9");
    assert_eq!(sent_signature(&unknown), "skip_thought_signature_validator");
    assert_eq!(unknown.count("gemini_router.signatures.bypassed"), 1);

    let other_key = turn(&[("authorization", "Bearer AIzaOTHERKEY99")], "call-1");
    assert_eq!(
        sent_signature(&other_key),
        "skip_thought_signature_validator"
    );
    assert_eq!(other_key.count("gemini_router.signatures.restored"), 0);

    let kept = serde_json::to_vec(&{
        let mut body: Value = serde_json::from_slice(&second_turn("call-1")).unwrap();
        body["messages"][1]["tool_calls"][0]["extra_content"] =
            serde_json::json!({"google": {"thought_signature": "T1dO"}});
        body
    })
    .unwrap();
    let x = Exchange::routed("", CHAT, &[BEARER], &kept);
    assert_eq!(
        sent_signature(&x),
        "T1dO",
        "a kept signature is left as it is"
    );
    assert_eq!(x.request_header("content-length"), None);
    assert!(x.fake.request_body.borrow().as_deref() == Some(&kept[..]));
}

#[test]
fn thought_signatures_off_remembers_and_restores_nothing() {
    let config = r#"{"thought_signatures":{"restore":"off"}}"#;
    let mut x = Exchange::routed(config, CHAT, &[BEARER], &second_turn("call-1"));
    assert_eq!(sent_signature(&x), Value::Null);
    assert_eq!(
        x.response(200, &[("content-type", "application/json")], false),
        Action::Continue
    );
    let answer = br#"{"choices":[{"message":{"tool_calls":[{"id":"c","extra_content":{"google":{"thought_signature":"QQ=="}}}]}}]}"#;
    assert_eq!(x.response_chunk(answer, true), Action::Continue);
    assert!(x.fake.shared.borrow().is_empty());
    assert_eq!(x.count("gemini_router.signatures.stored"), 0);
}

#[test]
fn a_tool_call_stream_is_repaired_as_it_passes() {
    let mut x = Exchange::routed("", CHAT, &[BEARER], AGENT_CHAT);
    assert_eq!(
        x.response(
            200,
            &[
                ("content-type", "text/event-stream"),
                ("content-length", "999")
            ],
            false
        ),
        Action::Continue
    );
    assert_eq!(x.response_header("content-length"), None);
    let stream = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"call-1","type":"function","function":{"name":"get_weather","arguments":"{}"},"extra_content":{"google":{"thought_signature":"U0lH"}}}]},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "\n\ndata: [DONE]\n\n"
    );
    let bytes = stream.as_bytes();
    for (i, piece) in bytes.chunks(50).enumerate() {
        let end = (i + 1) * 50 >= bytes.len();
        assert_eq!(x.response_chunk(piece, end), Action::Continue);
    }
    let got = String::from_utf8(x.response_body()).unwrap();
    let events: Vec<Value> = got
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(
        events[0]["choices"][0]["delta"]["tool_calls"][0]["index"],
        0
    );
    assert_eq!(events[1]["choices"][0]["finish_reason"], "tool_calls");
    assert!(got.ends_with("data: [DONE]\n\n"));
    assert_eq!(x.count("gemini_router.streams.repaired"), 1);
    assert_eq!(x.count("gemini_router.signatures.stored"), 1);
}

#[test]
fn a_chat_without_tools_is_not_watched() {
    let body = br#"{"model":"gemini-3.5-flash","messages":[{"role":"user","content":"hi"}]}"#;
    let mut x = Exchange::routed("", CHAT, &[BEARER], body);
    assert_eq!(
        x.response(200, &[("content-type", "text/event-stream")], false),
        Action::Continue
    );
    let reads = *x.fake.header_reads.borrow();
    // What a watched stream would get repaired (an index, the finish
    // reason) passes as it came.
    let stream = concat!(
        r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}"#,
        "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "\n\n"
    )
    .as_bytes();
    assert_eq!(x.response_chunk(stream, false), Action::Continue);
    assert_eq!(x.response_body(), stream);
    assert_eq!(*x.fake.header_reads.borrow(), reads);
    assert_eq!(x.count("gemini_router.streams.repaired"), 0);
}

#[test]
fn a_translated_stream_goes_out_event_by_event() {
    let body = br#"{"model":"gemini-3.1-flash-image","stream":true,"messages":[{"role":"user","content":"a fox"}]}"#;
    let mut x = Exchange::routed("", CHAT, &[BEARER], body);
    assert_eq!(
        x.request_header(":path").as_deref(),
        Some("/v1beta/models/gemini-3.1-flash-image:streamGenerateContent?alt=sse")
    );
    assert_eq!(
        x.response(
            200,
            &[
                ("content-type", "text/event-stream"),
                ("content-length", "500")
            ],
            false
        ),
        Action::Continue
    );
    assert_eq!(x.response_header("content-length"), None);
    let text = b"data: {\"candidates\":[{\"index\":0,\"content\":{\"parts\":[{\"text\":\"A fox\"}]}}]}\r\n\r\n";
    // Half an event: nothing goes out yet; then the rest of it: the text.
    assert_eq!(x.response_chunk(&text[..20], false), Action::Continue);
    assert!(x.response_body().is_empty());
    assert_eq!(x.response_chunk(&text[20..], false), Action::Continue);
    let sent = String::from_utf8(x.response_body()).unwrap();
    assert!(sent.contains(r#""delta":{"content":"A fox"}"#), "{sent}");
    assert!(!sent.contains("[DONE]"));
    let image = b"data: {\"candidates\":[{\"index\":0,\"content\":{\"parts\":[{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBOR\"}}]},\"finishReason\":\"STOP\"}]}\n\n";
    assert_eq!(x.response_chunk(image, true), Action::Continue);
    let sent = String::from_utf8(x.response_body()).unwrap();
    assert!(
        sent.contains(r#"{"content":"\n\n![image](data:image/png;base64,iVBOR)"}"#),
        "{sent}"
    );
    assert!(sent.ends_with("data: [DONE]\n\n"), "{sent}");
    assert_eq!(sent.matches("[DONE]").count(), 1);
    assert_eq!(x.count("gemini_router.translate_errors"), 0);
}

#[test]
fn a_translated_stream_that_fails_midway_says_why_and_drops_the_rest() {
    let body = br#"{"model":"gemini-3.1-flash-image","stream":true,"messages":[{"role":"user","content":"a fox"}]}"#;
    let mut x = Exchange::routed("", CHAT, &[BEARER], body);
    assert_eq!(
        x.response(200, &[("content-type", "text/event-stream")], false),
        Action::Continue
    );
    assert_eq!(
        x.response_chunk(b"data: {not json}\n\n", false),
        Action::Continue
    );
    assert_eq!(
        x.response_chunk(b"data: {\"candidates\":[]}\n\n", true),
        Action::Continue
    );
    let sent = String::from_utf8(x.response_body()).unwrap();
    assert!(sent.contains("gemini-router: "), "{sent}");
    assert!(
        sent.contains(r#""finish_reason":"content_filter""#),
        "{sent}"
    );
    assert!(sent.ends_with("data: [DONE]\n\n"), "{sent}");
    assert_eq!(x.count("gemini_router.translate_errors"), 1);
}

#[test]
fn each_way_a_request_goes_moves_its_counter_by_one() {
    struct Case {
        name: &'static str,
        config: &'static str,
        path: &'static str,
        headers: &'static [(&'static str, &'static str)],
        /// The request body; `None`: the request ends with its headers.
        body: Option<&'static [u8]>,
        /// The action on the request headers.
        head: Action,
        counter: &'static str,
        /// The status of the local reply, if the filter answers itself.
        reply: Option<u16>,
    }
    let task = br####"{"model":"imagen-4.0-generate-001","messages":[{"role":"user","content":"### Task: Generate a title for this chat"}]}"####;
    let cases = [
        Case {
            name: "an OpenAI body without a model",
            config: "",
            path: CHAT,
            headers: &[BEARER],
            body: Some(br#"{"messages":[]}"#),
            head: Action::Pause,
            counter: "gemini_router.passthrough.no_model",
            reply: None,
        },
        Case {
            name: "an OpenAI body that is not JSON",
            config: "",
            path: CHAT,
            headers: &[BEARER],
            body: Some(b"{nope"),
            head: Action::Pause,
            counter: "gemini_router.passthrough.invalid_json",
            reply: None,
        },
        Case {
            name: "a body over max_body_bytes",
            config: r#"{"max_body_bytes":40}"#,
            path: CHAT,
            headers: &[BEARER],
            body: Some(IMAGEN_CHAT),
            head: Action::Pause,
            counter: "gemini_router.passthrough.too_large",
            reply: None,
        },
        Case {
            name: "a content-length over max_body_bytes",
            config: r#"{"max_body_bytes":40}"#,
            path: CHAT,
            headers: &[BEARER, ("content-length", "4000")],
            body: None,
            head: Action::Continue,
            counter: "gemini_router.passthrough.too_large",
            reply: None,
        },
        Case {
            name: "a compressed body",
            config: "",
            path: CHAT,
            headers: &[BEARER, ("content-encoding", "gzip")],
            body: None,
            head: Action::Continue,
            counter: "gemini_router.passthrough.compressed",
            reply: None,
        },
        Case {
            name: "a model no translator serves there",
            config: "",
            path: "/v1beta/models/veo-3.0-generate-001:generateContent",
            headers: &[("x-goog-api-key", "AIzaTESTKEY123")],
            body: None,
            head: Action::Continue,
            counter: "gemini_router.passthrough.no_translator",
            reply: None,
        },
        Case {
            name: "a model name the filter will not put into a path",
            config: "",
            path: CHAT,
            headers: &[BEARER],
            body: Some(br#"{"model":"../etc","messages":[]}"#),
            head: Action::Pause,
            counter: "gemini_router.rejected.invalid_model",
            reply: Some(400),
        },
        Case {
            name: "two different credentials",
            config: "",
            path: CHAT,
            headers: &[BEARER, ("x-goog-api-key", "AIzaOTHERKEY99")],
            body: None,
            head: Action::Pause,
            counter: "gemini_router.rejected.ambiguous_credentials",
            reply: Some(400),
        },
        Case {
            name: "a background task for an image model, answered by the filter",
            config: "",
            path: CHAT,
            headers: &[BEARER],
            body: Some(task),
            head: Action::Pause,
            counter: "gemini_router.tasks.answered",
            reply: Some(200),
        },
        Case {
            name: "a background task for an image model, sent to task_model",
            config: r#"{"task_model":"gemini-3.5-flash"}"#,
            path: CHAT,
            headers: &[BEARER],
            body: Some(task),
            head: Action::Pause,
            counter: "gemini_router.tasks.served",
            reply: None,
        },
    ];
    for case in cases {
        let mut x = Exchange::new(case.config);
        let head = x.request("POST", case.path, case.headers, case.body.is_none());
        assert_eq!(head, case.head, "{}: headers", case.name);
        if let Some(body) = case.body {
            let want = if case.reply.is_some() {
                Action::Pause
            } else {
                Action::Continue
            };
            assert_eq!(x.request_chunk(body, true), want, "{}: body", case.name);
        }
        assert_eq!(x.count(case.counter), 1, "{}", case.name);
        assert_eq!(x.count("gemini_router.requests_total"), 1, "{}", case.name);
        let replies: Vec<u16> = x.replies().iter().map(|r| r.0).collect();
        assert_eq!(
            replies,
            Vec::from_iter(case.reply),
            "{}: local reply",
            case.name
        );
    }
}

#[test]
fn a_thought_signature_over_the_bound_is_counted_and_not_remembered() {
    let config = r#"{"thought_signatures":{"max_signature_bytes":8}}"#;
    let json = [("content-type", "application/json")];
    for (signature, stored, too_large) in [("U0lH", 1, 0), ("U0lHTkFUVVJFLTE=", 0, 1)] {
        let mut x = Exchange::routed(config, CHAT, &[BEARER], AGENT_CHAT);
        assert_eq!(x.response(200, &json, false), Action::Continue);
        assert_eq!(
            x.response_chunk(&tool_answer(signature), true),
            Action::Continue
        );
        assert_eq!(x.count("gemini_router.signatures.stored"), stored);
        assert_eq!(x.count("gemini_router.signatures.too_large"), too_large);
        assert_eq!(
            x.fake.shared.borrow().is_empty(),
            stored == 0,
            "{signature}"
        );
    }
}

/// Every counter the filter defines is named, as a string, by some test of
/// this file (of the counters kept per family, one).
#[test]
fn every_counter_has_a_glue_test() {
    let x = Exchange::new("");
    let source = include_str!("tests.rs");
    let families = crate::endpoint::Family::ALL.map(crate::endpoint::Family::as_str);
    for name in x.fake.counter_names.borrow().iter() {
        let counted = match name.rsplit_once('.') {
            Some((kind, family)) if families.contains(&family) => format!("\"{kind}."),
            _ => format!("\"{name}\""),
        };
        assert!(source.contains(&counted), "no glue test counts {name}");
    }
}

#[test]
fn callbacks_reach_the_context_envoy_names_and_unknown_ones_pass() {
    use super::entry::Contexts;
    let fake = Rc::new(Fake::default());
    let mut contexts: Contexts<Rc<Fake>> = Contexts::new();
    let host = || Rc::clone(&fake);
    // A root context (root id 0), not configured yet: it makes no request
    // contexts, and callbacks for them pass.
    contexts.create(1, 0, host);
    contexts.create(2, 1, host);
    assert!(contexts.stream(2).is_none());
    let headers = |r: &mut Router<Rc<Fake>>| r.on_http_request_headers(0, true);
    assert_eq!(contexts.on(2, headers), Action::Continue);
    assert_eq!(contexts.on(99, headers), Action::Continue);
    assert!(!contexts.configure(99, 0), "no such root");
    // Configured: requests get contexts, in any order of ids.
    let config = Rc::new(Config::from_bytes(b"{}").unwrap());
    contexts.set_root_config(1, config, Rc::new(Metrics::define(&fake)));
    for id in [7, 3, 5] {
        contexts.create(id, 1, host);
    }
    fake.request_headers.borrow_mut().extend([
        (":method".to_owned(), "POST".to_owned()),
        (":path".to_owned(), CHAT.to_owned()),
    ]);
    assert_eq!(
        contexts.on(5, |r| r.on_http_request_headers(0, false)),
        Action::Pause
    );
    assert!(contexts.stream(3).is_some() && contexts.stream(7).is_some());
    assert_eq!(contexts.awaiting(1), None, "no callout in flight");
    // Deleting a request leaves the others and the root; deleting the
    // root leaves the requests it made.
    assert!(!contexts.delete(5), "a request context");
    assert!(contexts.stream(5).is_none() && contexts.stream(3).is_some());
    assert!(contexts.delete(1), "the root context");
    assert!(!contexts.delete(1), "gone");
    contexts.create(9, 1, host);
    assert!(contexts.stream(9).is_none(), "the root is gone");
    assert!(contexts.stream(7).is_some());
}

#[test]
fn the_request_head_keeps_its_values_as_spans_of_the_map() {
    use super::{Kept, RequestHead};
    struct Case {
        name: &'static str,
        pairs: Vec<(&'static str, &'static [u8])>,
        /// (header, value) for each kept header present.
        want: Vec<(Kept, &'static str)>,
        accept_encoding: bool,
    }
    let long: &'static str = Box::leak("k".repeat(300).into_boxed_str());
    let cases = [
        Case {
            name: "a chat",
            pairs: vec![
                (":method", b"POST"),
                (":path", b"/v1beta/openai/chat/completions"),
                (":authority", b"example.com"),
                ("content-length", b"12"),
                ("content-type", b"application/json"),
                ("authorization", b"Bearer AIzaKEY"),
                ("accept-encoding", b"gzip"),
                ("user-agent", b"curl"),
            ],
            want: vec![
                (Kept::Method, "POST"),
                (Kept::Path, "/v1beta/openai/chat/completions"),
                (Kept::Authority, "example.com"),
                (Kept::ContentLength, "12"),
                (Kept::ContentType, "application/json"),
                (Kept::Authorization, "Bearer AIzaKEY"),
            ],
            accept_encoding: true,
        },
        Case {
            name: "long values (lengths that are not ASCII)",
            pairs: vec![
                (":path", b"/p"),
                ("x-goog-api-key", long.as_bytes()),
                ("cookie", long.as_bytes()),
            ],
            want: vec![(Kept::Path, "/p"), (Kept::ApiKey, long)],
            accept_encoding: false,
        },
        Case {
            name: "a credential given twice is joined",
            pairs: vec![
                (":method", b"POST"),
                ("x-goog-api-key", b"A"),
                ("content-encoding", b"gzip"),
                ("x-goog-api-key", b"B"),
            ],
            want: vec![
                (Kept::Method, "POST"),
                (Kept::ApiKey, "A,B"),
                (Kept::ContentEncoding, "gzip"),
            ],
            accept_encoding: false,
        },
        Case {
            name: "a pseudo-header given twice: the last",
            pairs: vec![
                (":path", b"/a"),
                (":path", b"/b"),
                ("authorization", b"Bearer K"),
            ],
            want: vec![(Kept::Path, "/b"), (Kept::Authorization, "Bearer K")],
            accept_encoding: false,
        },
        Case {
            name: "three lines joined in order, beside a pseudo-header twice",
            pairs: vec![
                ("authorization", b"A"),
                (":path", b"/a"),
                ("authorization", b"B"),
                (":path", b"/b"),
                ("authorization", b"C"),
            ],
            want: vec![(Kept::Path, "/b"), (Kept::Authorization, "A,B,C")],
            accept_encoding: false,
        },
        Case {
            name: "a header not kept is not UTF-8",
            pairs: vec![
                (":method", b"GET"),
                ("x-note", b"caf\xe9"),
                ("authorization", b"Bearer K"),
            ],
            want: vec![(Kept::Method, "GET"), (Kept::Authorization, "Bearer K")],
            accept_encoding: false,
        },
        Case {
            name: "a kept value is not UTF-8",
            pairs: vec![(":path", b"/caf\xe9"), ("authorization", b"Bearer \xff")],
            want: vec![
                (Kept::Path, "/caf\u{fffd}"),
                (Kept::Authorization, "Bearer \u{fffd}"),
            ],
            accept_encoding: false,
        },
        Case {
            name: "joined and not UTF-8",
            pairs: vec![
                ("authorization", b"Bearer \xff"),
                ("authorization", b"Bearer K"),
            ],
            want: vec![(Kept::Authorization, "Bearer \u{fffd},Bearer K")],
            accept_encoding: false,
        },
        Case {
            name: "none",
            pairs: vec![],
            want: vec![],
            accept_encoding: false,
        },
    ];
    for case in cases {
        let head = RequestHead::from_map(HeaderMap::to_wire(&case.pairs));
        let want = |kept| case.want.iter().find(|(k, _)| *k == kept).map(|(_, v)| *v);
        for kept in Kept::ALL {
            assert_eq!(head.get(kept), want(kept), "{}: {kept:?}", case.name);
        }
        // What the flow is handed: empty when absent.
        assert_eq!(
            head.method(),
            want(Kept::Method).unwrap_or(""),
            "{}",
            case.name
        );
        assert_eq!(head.path(), want(Kept::Path).unwrap_or(""), "{}", case.name);
        assert_eq!(head.accept_encoding, case.accept_encoding, "{}", case.name);
    }
}

#[test]
fn each_kept_header_is_found_by_its_name_and_no_other_is() {
    use super::Kept;
    for (kept, name) in Kept::TABLE {
        assert_eq!(Kept::of(name), Some(kept), "{kept:?}");
    }
    for other in [&b"accept-encoding"[..], b"content-lengt", b":Method", b""] {
        assert_eq!(Kept::of(other), None, "{other:?}");
    }
}
