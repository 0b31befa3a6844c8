//! The host calls the glue makes, behind one trait: [`Proxy`] calls
//! `proxy_wasm::hostcalls` and logs host errors instead of panicking (the
//! SDK's convenience methods unwrap them); the glue's tests use a fake.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};
use std::time::Duration;

use log::Level;

/// Logs a host call that failed: "`what`: host error `status`".
#[cold]
#[inline(never)]
pub(super) fn host_error(level: Level, what: std::fmt::Arguments<'_>, status: Status) {
    log::log!(level, "{what}: host error {status:?}");
}

/// Everything the glue asks of Envoy.
pub trait Host {
    /// Reads a header; a host error reads as absent.
    fn header(&self, map: MapType, name: &str) -> Option<String>;
    /// Reads a whole header map, one pair per header line; a host error
    /// reads as empty.
    fn headers(&self, map: MapType) -> Vec<(String, String)>;
    /// Sets (`Some`) or removes (`None`) a header.
    fn set_header(&self, map: MapType, name: &str, value: Option<&str>) -> Result<(), Status>;
    /// Reads the first `size` bytes of a body buffer.
    fn body(&self, buffer: BufferType, size: usize) -> Result<Vec<u8>, Status>;
    /// Replaces the first `size` bytes of a body buffer (all of it) with
    /// `value`. Only valid once a body callback ran: before that Envoy has
    /// no buffer, and writing one crashes it.
    fn set_body(&self, buffer: BufferType, size: usize, value: &[u8]) -> Result<(), Status>;
    /// Sends a local reply (Envoy sends it once the callback returns).
    fn reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]);
    /// Current Unix time in seconds; 0 if the host cannot tell.
    fn unix_time(&self) -> u64;
    /// Defines a counter; `None` if the host refuses.
    fn define_counter(&self, name: &str) -> Option<u32>;
    /// Adds one to a counter.
    fn increment(&self, id: u32);
    /// Reads a property (`["xds", "cluster_name"]` ...).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// Starts an HTTP callout (a GET without body); returns its token.
    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, Status>;
    /// The `:status` and the first `size` bytes of the body of the callout
    /// answer being delivered.
    fn call_response(&self, size: usize) -> (Option<String>, Vec<u8>);
    /// Resumes a response held across a callout.
    fn resume_response(&self);
    /// Reads a value of the VM's shared data (shared by its workers).
    fn shared_get(&self, key: &str) -> Option<Vec<u8>>;
    /// Sets a value of the VM's shared data; `false` if the host refused.
    fn shared_set(&self, key: &str, value: &[u8]) -> bool;
}

/// A header value as text. HTTP lets a value hold bytes that are not
/// UTF-8 (obs-text), and Envoy passes them on: the SDK's `String` readers
/// (`get_map`, `get_map_value`) then panic, which aborts the VM, so values
/// are read as bytes and each invalid sequence becomes U+FFFD. (Names are
/// tokens: Envoy refuses any other byte in them.)
fn text(value: Vec<u8>) -> String {
    String::from_utf8(value)
        .unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
}

/// The real host: Envoy, through `proxy_wasm::hostcalls`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Proxy;

impl Host for Proxy {
    fn header(&self, map: MapType, name: &str) -> Option<String> {
        match hostcalls::get_map_value_bytes(map, name) {
            Ok(value) => value.map(text),
            Err(status) => {
                host_error(Level::Warn, format_args!("get header {name}"), status);
                None
            }
        }
    }

    // Not inlined: one copy for the glue's several whole-map reads.
    #[inline(never)]
    fn headers(&self, map: MapType) -> Vec<(String, String)> {
        match hostcalls::get_map_bytes(map) {
            Ok(map) => map
                .into_iter()
                .map(|(name, value)| (name, text(value)))
                .collect(),
            Err(status) => {
                host_error(Level::Warn, format_args!("get headers"), status);
                Vec::new()
            }
        }
    }

    fn set_header(&self, map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
        hostcalls::set_map_value(map, name, value).inspect_err(|status| {
            host_error(Level::Warn, format_args!("set header {name}"), *status);
        })
    }

    fn body(&self, buffer: BufferType, size: usize) -> Result<Vec<u8>, Status> {
        hostcalls::get_buffer(buffer, 0, size)
            .map(Option::unwrap_or_default)
            .inspect_err(|status| host_error(Level::Warn, format_args!("get body"), *status))
    }

    fn set_body(&self, buffer: BufferType, size: usize, value: &[u8]) -> Result<(), Status> {
        hostcalls::set_buffer(buffer, 0, size, value)
            .inspect_err(|status| host_error(Level::Warn, format_args!("set body"), *status))
    }

    fn reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        if let Err(e) =
            hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body))
        {
            host_error(Level::Warn, format_args!("send local reply"), e);
        }
    }

    fn unix_time(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs())
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Counter, name)
            .inspect_err(|status| {
                host_error(Level::Warn, format_args!("define metric {name}"), *status)
            })
            .ok()
    }

    fn increment(&self, id: u32) {
        if let Err(status) = hostcalls::increment_metric(id, 1) {
            host_error(Level::Debug, format_args!("increment metric {id}"), status);
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, Status> {
        hostcalls::dispatch_http_call(cluster, headers.to_vec(), None, Vec::new(), timeout)
            .inspect_err(|status| {
                host_error(Level::Warn, format_args!("callout to {cluster}"), *status)
            })
    }

    fn call_response(&self, size: usize) -> (Option<String>, Vec<u8>) {
        let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .map(text);
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        (status, body)
    }

    fn resume_response(&self) {
        if let Err(status) = hostcalls::resume_http_response() {
            host_error(Level::Warn, format_args!("resume response"), status);
        }
    }

    fn shared_get(&self, key: &str) -> Option<Vec<u8>> {
        hostcalls::get_shared_data(key)
            .ok()
            .and_then(|(value, _)| value)
    }

    fn shared_set(&self, key: &str, value: &[u8]) -> bool {
        // No compare-and-swap: the newest signature for a slot wins.
        hostcalls::set_shared_data(key, Some(value), None)
            .inspect_err(|status| {
                host_error(Level::Debug, format_args!("set shared data"), *status)
            })
            .is_ok()
    }
}

/// The host's shared data as the signature memory's store.
pub struct SharedData<'a, H: Host>(pub &'a H);

impl<H: Host> crate::signatures::Store for SharedData<'_, H> {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.shared_get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> bool {
        self.0.shared_set(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn header_values_that_are_not_utf8_read_as_text() {
        let cases: [(&[u8], &str); 4] = [
            (b"", ""),
            (b"Bearer AIzaKEY", "Bearer AIzaKEY"),
            ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
            (b"caf\xe9 \xff\xfe", "caf\u{fffd} \u{fffd}\u{fffd}"),
        ];
        for (bytes, want) in cases {
            assert_eq!(text(bytes.to_vec()), want, "{bytes:?}");
        }
    }
}
