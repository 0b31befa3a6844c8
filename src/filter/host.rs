//! Thin wrappers over `proxy_wasm::hostcalls` that log host errors instead
//! of panicking (the SDK's convenience methods unwrap them).

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

/// Reads a header; a host error reads as absent.
pub fn header(map: MapType, name: &str) -> Option<String> {
    match hostcalls::get_map_value(map, name) {
        Ok(value) => value,
        Err(status) => {
            log::warn!("get header {name}: host error {status:?}");
            None
        }
    }
}

/// Reads a whole header map, one pair per header line; a host error
/// reads as empty.
pub fn headers(map: MapType) -> Vec<(String, String)> {
    hostcalls::get_map(map).unwrap_or_else(|status| {
        log::warn!("get headers: host error {status:?}");
        Vec::new()
    })
}

/// Sets (`Some`) or removes (`None`) a header.
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
    hostcalls::set_map_value(map, name, value).inspect_err(|status| {
        log::warn!("set header {name}: host error {status:?}");
    })
}

/// Reads a whole body buffer of `size` bytes.
pub fn body(buffer: BufferType, size: usize) -> Result<Vec<u8>, Status> {
    hostcalls::get_buffer(buffer, 0, size)
        .map(Option::unwrap_or_default)
        .inspect_err(|status| log::warn!("get body: host error {status:?}"))
}

/// Replaces the first `size` bytes of a body buffer (all of it) with `value`.
pub fn set_body(buffer: BufferType, size: usize, value: &[u8]) -> Result<(), Status> {
    hostcalls::set_buffer(buffer, 0, size, value)
        .inspect_err(|status| log::warn!("set body: host error {status:?}"))
}

/// Sends a local reply with a JSON body.
pub fn reply(status: u16, headers: &[(&str, &str)], body: &[u8]) {
    if let Err(e) = hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body)) {
        log::warn!("send local reply: host error {e:?}");
    }
}

/// Current Unix time in seconds; 0 if the host cannot tell.
pub fn unix_time() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}
