//! The proxy-wasm ABI, version 0.2.1, as Envoy speaks it: the enums at the
//! boundary, the host functions the glue calls (each a `Result`: a status
//! the host was not expected to give is an error to handle, never a panic,
//! which would abort the VM), and the memory the host allocates in the VM.
//! The callbacks the host makes are in [`super::entry`].
//!
//! The module speaks the ABI itself rather than through the proxy-wasm SDK:
//! the SDK's dispatcher, the trait methods its `dyn` contexts carry and the
//! host calls only they reach were about 40 KB of the module's code, and
//! every Envoy that loads a module pays for each of its functions in
//! compiled code and V8's bookkeeping (`make bench-idle`); the SDK also
//! panics on a host status it does not expect.

use std::mem::MaybeUninit;
use std::ptr::{null, null_mut};

/// What a stream callback tells Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    /// Go on to the next filter.
    Continue = 0,
    /// Stop iteration (and, for a body, buffer it).
    Pause = 1,
}

/// A host status other than `Ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    Empty,
    CasMismatch,
    /// `InternalFailure`, or a code this ABI version does not name.
    InternalFailure(u32),
}

impl Status {
    /// `Ok(())` for the host's `Ok` (0), the status otherwise.
    fn check(code: u32) -> Result<(), Status> {
        Err(match code {
            0 => return Ok(()),
            1 => Status::NotFound,
            2 => Status::BadArgument,
            3 => Status::SerializationFailure,
            4 => Status::ParseFailure,
            7 => Status::Empty,
            8 => Status::CasMismatch,
            other => Status::InternalFailure(other),
        })
    }
}

/// The header maps a host function can name (by the ABI's names).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MapType {
    HttpRequestHeaders = 0,
    HttpResponseHeaders = 2,
    HttpCallResponseHeaders = 6,
}

/// The buffers a host function can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BufferType {
    HttpRequestBody = 0,
    HttpResponseBody = 1,
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

/// The ABI's number for a log level (`critical`, 5, is not used).
fn level_code(level: log::Level) -> u32 {
    match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    }
}

/// The most detailed level the host logs for the given ABI level number.
fn level_filter(code: u32) -> log::LevelFilter {
    match code {
        0 => log::LevelFilter::Trace,
        1 => log::LevelFilter::Debug,
        2 => log::LevelFilter::Info,
        3 => log::LevelFilter::Warn,
        4 => log::LevelFilter::Error,
        _ => log::LevelFilter::Off,
    }
}

/// Declares the host functions: imported from Envoy ("env") in the
/// module; in the unit tests (on the host or in V8, where the glue reaches
/// a fake host) each answers `InternalFailure` (10).
macro_rules! host_functions {
    ($(fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> u32;)*) => {
        #[cfg(all(target_arch = "wasm32", not(test)))]
        #[link(wasm_import_module = "env")]
        extern "C" {
            $(fn $name($($arg: $ty),*) -> u32;)*
        }

        $(
            #[cfg(any(not(target_arch = "wasm32"), test))]
            #[allow(clippy::too_many_arguments)]
            unsafe fn $name($(_: $ty),*) -> u32 {
                10
            }
        )*
    };
}

// The host functions, as Envoy exports them to the module. Plain integers
// at the boundary: a value the enums above lack stays a number.
host_functions! {
    fn proxy_log(level: u32, message: *const u8, size: usize) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_http_call(
        cluster: *const u8,
        cluster_size: usize,
        headers: *const u8,
        headers_size: usize,
        body: *const u8,
        body_size: usize,
        trailers: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_set_effective_context(context: u32) -> u32;
}

/// Allocates `size` bytes for the host to write an answer into (the
/// export `proxy_on_memory_allocate`); the answer's reader takes them back
/// as a `Vec` (see [`taken`]).
pub fn allocate(size: usize) -> *mut u8 {
    let mut bytes: Vec<MaybeUninit<u8>> = Vec::with_capacity(size);
    // SAFETY: the capacity is `size`, and `MaybeUninit` needs no
    // initialising; the boxed slice is exactly `size` long.
    unsafe { bytes.set_len(size) };
    Box::into_raw(bytes.into_boxed_slice()).cast::<u8>()
}

/// The answer of a host function that hands back bytes through two
/// out-parameters: `None` when the host has none (`NotFound`, or no
/// buffer).
fn taken(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match Status::check(call(&mut data, &mut size)) {
        Ok(()) if data.is_null() => Ok(None),
        // SAFETY: a non-null `data` is the buffer the host had
        // `allocate` make for this answer: `size` bytes, a
        // boxed slice of exactly that length, which the host wrote and
        // now hands over.
        Ok(()) => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        Err(Status::NotFound) => Ok(None),
        Err(status) => Err(status),
    }
}

/// Writes `message` to Envoy's log at `level`.
pub fn log(level: log::Level, message: &str) -> Result<(), Status> {
    // SAFETY (each call below): the pointers are to live memory of the
    // sizes given, and the host only reads them, or writes the
    // out-parameters it is given.
    Status::check(unsafe { proxy_log(level_code(level), message.as_ptr(), message.len()) })
}

/// The most detailed level Envoy logs for the filter's component.
pub fn log_level() -> Result<log::LevelFilter, Status> {
    let mut code = 0;
    Status::check(unsafe { proxy_get_log_level(&mut code) })?;
    Ok(level_filter(code))
}

/// Asks for `proxy_on_tick` every `millis` milliseconds.
pub fn set_tick_period(millis: u32) -> Result<(), Status> {
    Status::check(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// The host's clock: nanoseconds since the Unix epoch.
pub fn now_nanos() -> Result<u64, Status> {
    let mut nanos = 0;
    Status::check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Bytes `start..start + max` of a buffer (fewer where it ends).
pub fn buffer(kind: BufferType, start: usize, max: usize) -> Result<Option<Vec<u8>>, Status> {
    taken(|data, size| unsafe { proxy_get_buffer_bytes(kind as u32, start, max, data, size) })
}

/// Replaces bytes `start..start + size` of a buffer with `value`.
pub fn set_buffer(kind: BufferType, start: usize, size: usize, value: &[u8]) -> Result<(), Status> {
    Status::check(unsafe {
        proxy_set_buffer_bytes(kind as u32, start, size, value.as_ptr(), value.len())
    })
}

/// A whole header map in the ABI's wire form (see `HeaderMap`).
pub fn header_pairs(map: MapType) -> Result<Option<Vec<u8>>, Status> {
    taken(|data, size| unsafe { proxy_get_header_map_pairs(map as u32, data, size) })
}

/// A header's value (the first, where it is repeated).
pub fn header(map: MapType, name: &str) -> Result<Option<Vec<u8>>, Status> {
    taken(|data, size| unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), data, size)
    })
}

/// Sets (`Some`) or removes (`None`) a header.
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
    let (key, key_size) = (name.as_ptr(), name.len());
    Status::check(unsafe {
        match value {
            Some(v) => {
                proxy_replace_header_map_value(map as u32, key, key_size, v.as_ptr(), v.len())
            }
            None => proxy_remove_header_map_value(map as u32, key, key_size),
        }
    })
}

/// Sends a local reply; `headers` in the wire form of a header map.
pub fn send_local_response(status: u32, headers: &[u8], body: &[u8]) -> Result<(), Status> {
    Status::check(unsafe {
        proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Defines a counter; its id.
pub fn define_counter(name: &str) -> Result<u32, Status> {
    let mut id = 0;
    Status::check(unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `by` to a metric.
pub fn increment(id: u32, by: i64) -> Result<(), Status> {
    Status::check(unsafe { proxy_increment_metric(id, by) })
}

/// A property by its path (`["xds", "cluster_name"]`): the parts joined by
/// NUL bytes.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    let joined = path.join("\0");
    taken(|data, size| unsafe { proxy_get_property(joined.as_ptr(), joined.len(), data, size) })
}

/// Starts an HTTP callout without a body or trailers to `cluster`; its
/// token. `headers` in the wire form of a header map.
pub fn http_call(cluster: &str, headers: &[u8], timeout_ms: u32) -> Result<u32, Status> {
    let mut token = 0;
    Status::check(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            null(),
            0,
            null(),
            0,
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// A value of the VM's shared data.
pub fn shared_get(key: &str) -> Result<Option<Vec<u8>>, Status> {
    let mut cas = 0;
    taken(|data, size| unsafe {
        proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas)
    })
}

/// Sets a value of the VM's shared data (no compare-and-swap).
pub fn shared_set(key: &str, value: &[u8]) -> Result<(), Status> {
    Status::check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), 0)
    })
}

/// Resumes the response of the effective context.
pub fn continue_response() -> Result<(), Status> {
    Status::check(unsafe { proxy_continue_stream(1) })
}

/// Makes `context` the one later host calls act on (a callout's answer
/// arrives on the root context).
pub fn set_effective_context(context: u32) -> Result<(), Status> {
    Status::check(unsafe { proxy_set_effective_context(context) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_levels_read_as_the_abi_numbers_them() {
        let statuses = [
            (0, Ok(())),
            (1, Err(Status::NotFound)),
            (2, Err(Status::BadArgument)),
            (3, Err(Status::SerializationFailure)),
            (4, Err(Status::ParseFailure)),
            (7, Err(Status::Empty)),
            (8, Err(Status::CasMismatch)),
            (10, Err(Status::InternalFailure(10))),
            (99, Err(Status::InternalFailure(99))),
        ];
        for (code, want) in statuses {
            assert_eq!(Status::check(code), want, "status {code}");
        }
        for level in [
            log::Level::Trace,
            log::Level::Debug,
            log::Level::Info,
            log::Level::Warn,
            log::Level::Error,
        ] {
            assert_eq!(level_filter(level_code(level)), level.to_level_filter());
        }
        assert_eq!(level_filter(5), log::LevelFilter::Off);
    }

    #[test]
    fn allocated_memory_is_taken_back_as_the_answer() {
        for size in [0, 1, 17, 4096] {
            let data = allocate(size);
            // SAFETY: `size` bytes were just allocated at `data`.
            unsafe { std::ptr::write_bytes(data, 0xab, size) };
            let got = taken(|d, s| {
                // SAFETY: the out-parameters point at live locals.
                unsafe {
                    *d = data;
                    *s = size;
                }
                0
            });
            assert_eq!(got, Ok(Some(vec![0xab; size])));
        }
        assert_eq!(taken(|_, _| 0), Ok(None));
        assert_eq!(taken(|_, _| 1), Ok(None));
        assert_eq!(taken(|_, _| 2), Err(Status::BadArgument));
    }
}
