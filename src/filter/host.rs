//! The host calls the glue makes, behind one trait: [`Proxy`] makes them
//! through [`super::abi`] and logs host errors; the glue's tests use a fake.

use super::abi::{self, BufferType, MapType, Status};
use std::ops::Range;
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
    /// Reads a header, as the host gives its bytes (the one header read
    /// alone, `:status`, is parsed as bytes, never made text); a host
    /// error reads as absent.
    fn header(&self, map: MapType, name: &str) -> Option<Vec<u8>>;
    /// Reads a whole header map, one pair per header line, as the host
    /// serialises it; a host error reads as empty.
    fn header_map(&self, map: MapType) -> HeaderMap;
    /// [`Host::header_map`] as owned text, for the paths that keep it.
    fn headers(&self, map: MapType) -> Vec<(String, String)> {
        self.header_map(map).to_pairs()
    }
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
    /// Adds one to a counter. (The module's host, [`Proxy`], tallies the
    /// additions and hands them to Envoy on the root context's tick, see
    /// [`flush_counters`]: a request makes no host call for its counters.)
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
pub(super) fn text(value: &[u8]) -> String {
    // The checked conversion first: a valid value (nearly every one) is
    // copied as it is, without the lossy conversion's walk over chunks.
    match std::str::from_utf8(value) {
        Ok(valid) => valid.to_owned(),
        Err(_) => String::from_utf8_lossy(value).into_owned(),
    }
}

/// [`text`] of a value the glue owns already (a host answer): kept as it
/// is when it is UTF-8 (nearly every one), not copied.
pub(super) fn owned_text(value: Vec<u8>) -> String {
    String::from_utf8(value).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A header map in the proxy-wasm wire form the host writes it in: the
/// number of pairs (u32, little endian), then each pair's name and value
/// lengths (u32 each), then each name and value followed by a NUL. Kept as
/// the host's one buffer and read in place: the SDK's reader allocates two
/// buffers per header, for the ten or so headers a client sends, while the
/// glue keeps a handful of values. Reading in place took a routed ~1 KiB
/// chat from 269.7k to 264.9k instructions of the front Envoy (callgrind
/// by hand, the method of `make bench`; `make bench` at bfd0829 and
/// 7fcde18: 278.0k and 272.7k).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderMap(Vec<u8>);

impl HeaderMap {
    /// The map `bytes` holds (the host's buffer, unchecked).
    pub fn from_wire(bytes: Vec<u8>) -> HeaderMap {
        HeaderMap(bytes)
    }

    /// `pairs` in the wire form, as the host writes them (and reads them:
    /// a local reply's headers, a callout's).
    pub fn to_wire<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> HeaderMap {
        let mut out = Vec::new();
        let count = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_le_bytes());
        for (name, value) in pairs {
            for part in [name.as_ref(), value.as_ref()] {
                let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_le_bytes());
            }
        }
        for (name, value) in pairs {
            for part in [name.as_ref(), value.as_ref()] {
                out.extend_from_slice(part);
                out.push(0);
            }
        }
        HeaderMap(out)
    }

    /// The pairs, in the host's order: name and value, as the host wrote
    /// them. A buffer that ends early or whose lengths do not fit yields
    /// the pairs before the fault.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let bytes = self.0.as_slice();
        self.spans()
            .map_while(move |(name, value)| Some((name, bytes.get(value)?)))
    }

    /// [`HeaderMap::pairs`] with each value as where it is in the map's
    /// bytes (see [`HeaderMap::into_text`]).
    pub fn spans(&self) -> impl Iterator<Item = (&[u8], Range<usize>)> {
        let bytes = self.0.as_slice();
        let (count, mut at) = match table_end(bytes) {
            Some(at) => (le_u32(bytes, 0).unwrap_or(0), at),
            None => (0, 0),
        };
        (0..count).map_while(move |i| {
            let name_len = le_u32(bytes, 4 + i * 8)?;
            let value_len = le_u32(bytes, 8 + i * 8)?;
            let name = bytes.get(at..at.checked_add(name_len)?)?;
            let value_at = at.checked_add(name_len)?.checked_add(1)?;
            let value = value_at..value_at.checked_add(value_len)?;
            bytes.get(value.clone())?;
            at = value.end.checked_add(1)?;
            Some((name, value))
        })
    }

    /// The map's bytes as text, so that values can be kept as spans of it
    /// (see [`HeaderMap::spans`]) instead of each copied out: the lengths
    /// table is blanked (NULs) and the rest is taken as it is when it is
    /// UTF-8, else the bytes (blanked) come back: some header is not.
    pub fn into_text(self) -> Result<String, Vec<u8>> {
        let mut bytes = self.0;
        let table = table_end(&bytes).unwrap_or(bytes.len());
        if let Some(lengths) = bytes.get_mut(..table) {
            lengths.fill(0);
        }
        String::from_utf8(bytes).map_err(|e| e.into_bytes())
    }

    /// The pairs as owned text (see [`text`]; names are tokens, which
    /// Envoy checks).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.pairs()
            .map(|(name, value)| (text(name), text(value)))
            .collect()
    }
}

/// Where the lengths table ends (the count, then two lengths per pair):
/// `None` when the buffer is shorter.
fn table_end(bytes: &[u8]) -> Option<usize> {
    le_u32(bytes, 0)?
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .filter(|&end| end <= bytes.len())
}

/// The little-endian u32 at `at`, as a length.
fn le_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// Counter additions not yet handed to Envoy: (counter id, additions), one
/// entry per counter (a filter has a few dozen).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally(Vec<(u32, u64)>);

impl Tally {
    /// One more for counter `id`.
    pub fn add(&mut self, id: u32) {
        match self.0.iter_mut().find(|(known, _)| *known == id) {
            Some((_, n)) => *n += 1,
            None => self.0.push((id, 1)),
        }
    }

    /// The additions so far, and none left.
    pub fn take(&mut self) -> Vec<(u32, u64)> {
        std::mem::take(&mut self.0)
    }
}

thread_local! {
    /// The VM's tally (a VM runs on one thread).
    static TALLY: std::cell::RefCell<Tally> = const { std::cell::RefCell::new(Tally(Vec::new())) };
}

/// Hands the tallied counter additions to Envoy: one host call per counter
/// that moved, instead of one per addition. Called on the root context's
/// tick (every second) and when a root context goes away.
pub fn flush_counters() {
    let additions = TALLY.with(|tally| tally.borrow_mut().take());
    for (id, n) in additions {
        if let Err(status) = abi::increment(id, i64::try_from(n).unwrap_or(i64::MAX)) {
            host_error(Level::Debug, format_args!("increment metric {id}"), status);
        }
    }
}

/// The real host: Envoy, through [`abi`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Proxy;

impl Host for Proxy {
    fn header(&self, map: MapType, name: &str) -> Option<Vec<u8>> {
        match abi::header(map, name) {
            Ok(value) => value,
            Err(status) => {
                host_error(Level::Warn, format_args!("get header {name}"), status);
                None
            }
        }
    }

    fn header_map(&self, map: MapType) -> HeaderMap {
        match abi::header_pairs(map) {
            Ok(bytes) => HeaderMap::from_wire(bytes.unwrap_or_default()),
            Err(status) => {
                host_error(Level::Warn, format_args!("get headers"), status);
                HeaderMap::default()
            }
        }
    }

    fn set_header(&self, map: MapType, name: &str, value: Option<&str>) -> Result<(), Status> {
        abi::set_header(map, name, value).inspect_err(|status| {
            host_error(Level::Warn, format_args!("set header {name}"), *status);
        })
    }

    fn body(&self, buffer: BufferType, size: usize) -> Result<Vec<u8>, Status> {
        abi::buffer(buffer, 0, size)
            .map(Option::unwrap_or_default)
            .inspect_err(|status| host_error(Level::Warn, format_args!("get body"), *status))
    }

    fn set_body(&self, buffer: BufferType, size: usize, value: &[u8]) -> Result<(), Status> {
        abi::set_buffer(buffer, 0, size, value)
            .inspect_err(|status| host_error(Level::Warn, format_args!("set body"), *status))
    }

    fn reply(&self, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let headers = HeaderMap::to_wire(headers);
        if let Err(e) = abi::send_local_response(u32::from(status), &headers.0, body) {
            host_error(Level::Warn, format_args!("send local reply"), e);
        }
    }

    fn unix_time(&self) -> u64 {
        abi::now_nanos().map_or(0, |nanos| nanos / 1_000_000_000)
    }

    fn define_counter(&self, name: &str) -> Option<u32> {
        abi::define_counter(name)
            .inspect_err(|status| {
                host_error(Level::Warn, format_args!("define metric {name}"), *status)
            })
            .ok()
    }

    fn increment(&self, id: u32) {
        TALLY.with(|tally| tally.borrow_mut().add(id));
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        abi::property(path).ok().flatten()
    }

    fn dispatch(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<u32, Status> {
        let headers = HeaderMap::to_wire(headers);
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        abi::http_call(cluster, &headers.0, millis).inspect_err(|status| {
            host_error(Level::Warn, format_args!("callout to {cluster}"), *status)
        })
    }

    fn call_response(&self, size: usize) -> (Option<String>, Vec<u8>) {
        let status = abi::header(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .map(owned_text);
        let body = abi::buffer(BufferType::HttpCallResponseBody, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        (status, body)
    }

    fn resume_response(&self) {
        if let Err(status) = abi::continue_response() {
            host_error(Level::Warn, format_args!("resume response"), status);
        }
    }

    fn shared_get(&self, key: &str) -> Option<Vec<u8>> {
        abi::shared_get(key).ok().flatten()
    }

    fn shared_set(&self, key: &str, value: &[u8]) -> bool {
        // No compare-and-swap: the newest signature for a slot wins.
        abi::shared_set(key, value)
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
    use super::{owned_text, text, HeaderMap};

    #[test]
    fn counter_additions_are_tallied_per_counter() {
        let mut tally = super::Tally::default();
        for id in [3, 7, 3, 3, 9, 7] {
            tally.add(id);
        }
        assert_eq!(tally.take(), [(3, 3), (7, 2), (9, 1)]);
        assert_eq!(tally.take(), [], "taken");
        tally.add(7);
        assert_eq!(tally.take(), [(7, 1)]);
    }

    #[test]
    fn header_values_that_are_not_utf8_read_as_text() {
        let cases: [(&[u8], &str); 4] = [
            (b"", ""),
            (b"Bearer AIzaKEY", "Bearer AIzaKEY"),
            ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
            (b"caf\xe9 \xff\xfe", "caf\u{fffd} \u{fffd}\u{fffd}"),
        ];
        for (bytes, want) in cases {
            assert_eq!(text(bytes), want, "{bytes:?}");
            assert_eq!(owned_text(bytes.to_vec()), want, "{bytes:?}: owned");
        }
    }

    #[test]
    fn header_maps_read_in_place() {
        let pairs: &[(&[u8], &[u8])] = &[
            (b":method", b"POST"),
            (b"x-empty", b""),
            (b"x-note", b"caf\xe9"),
            (b"authorization", b"Bearer AIzaKEY"),
        ];
        let wire = HeaderMap::to_wire(pairs);
        let got: Vec<(&[u8], &[u8])> = wire.pairs().collect();
        assert_eq!(got, pairs);
        assert_eq!(wire.to_pairs()[2], ("x-note".into(), "caf\u{fffd}".into()));
        let no_pairs: &[(&str, &str)] = &[];
        assert_eq!(HeaderMap::to_wire(no_pairs).pairs().count(), 0);
    }

    #[test]
    fn header_maps_become_text_their_values_are_spans_of() {
        // A value of 300 bytes: its length is not ASCII in the table.
        let long = "v".repeat(300);
        // (name, pairs, whether the map is text)
        type Case<'a> = (&'a str, Vec<(&'a str, &'a [u8])>, bool);
        let cases: [Case<'_>; 4] = [
            ("none", vec![], true),
            (
                "short",
                vec![
                    (":method", b"POST"),
                    ("x-empty", b""),
                    ("authorization", b"Bearer K"),
                ],
                true,
            ),
            (
                "a long value",
                vec![(":path", b"/p"), ("cookie", long.as_bytes())],
                true,
            ),
            (
                "a value not UTF-8",
                vec![(":path", b"/p"), ("x-note", b"caf\xe9")],
                false,
            ),
        ];
        for (name, pairs, utf8) in cases {
            let wire = HeaderMap::to_wire(&pairs);
            let spans: Vec<_> = wire.spans().map(|(n, v)| (n.to_vec(), v)).collect();
            let read: Vec<(&[u8], &[u8])> = wire.pairs().collect();
            let want: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), *v)).collect();
            assert_eq!(read, want, "{name}: pairs");
            match wire.into_text() {
                Ok(text) => {
                    assert!(utf8, "{name}: text");
                    for ((n, span), (want_name, want_value)) in spans.into_iter().zip(&pairs) {
                        assert_eq!(n, want_name.as_bytes(), "{name}");
                        assert_eq!(
                            text.get(span).map(str::as_bytes),
                            Some(*want_value),
                            "{name}"
                        );
                    }
                }
                Err(bytes) => {
                    assert!(!utf8, "{name}: not text");
                    let (_, span) = &spans[1];
                    assert_eq!(
                        &bytes[span.clone()],
                        pairs[1].1,
                        "{name}: the bytes come back"
                    );
                }
            }
        }
    }

    #[test]
    fn random_header_maps_read_back_and_damaged_ones_do_not_panic() {
        let mut next = crate::testutil::xorshift(0x2545_f491_4f6c_dd1d_u64);
        for round in 0..500 {
            let pairs: Vec<(String, Vec<u8>)> = (0..next() % 12)
                .map(|i| {
                    let value = (0..next() % 40).map(|_| (next() % 256) as u8).collect();
                    (format!("x-h{i}"), value)
                })
                .collect();
            let wire = HeaderMap::to_wire(&pairs);
            let read: Vec<(String, Vec<u8>)> = wire
                .pairs()
                .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
                .collect();
            assert_eq!(read, pairs, "round {round}");
            // Damage: bytes overwritten, then the buffer cut anywhere.
            let mut bytes = wire.0;
            for _ in 0..next() % 4 {
                if !bytes.is_empty() {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] = (next() % 256) as u8;
                }
            }
            let cut = (next() % (bytes.len() as u64 + 1)) as usize;
            bytes.truncate(cut);
            let damaged = HeaderMap::from_wire(bytes);
            // Each pair takes eight bytes of lengths and two NULs at least.
            assert!(damaged.pairs().count() <= cut / 10, "round {round}");
        }
    }

    #[test]
    fn damaged_header_maps_yield_what_precedes_the_damage() {
        let good = HeaderMap::to_wire(&[("a", "1"), ("b", "22")]).0;
        let names = |bytes: Vec<u8>| -> Vec<String> {
            HeaderMap::from_wire(bytes)
                .pairs()
                .map(|(n, v)| {
                    let (n, v) = (String::from_utf8_lossy(n), String::from_utf8_lossy(v));
                    format!("{n}={v}")
                })
                .collect()
        };
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut long_value = good.clone();
        long_value[16..20].copy_from_slice(&1000u32.to_le_bytes());
        let mut bad_name = good.clone();
        let at = good.len() - 5; // the `b` of the second name
        bad_name[at] = 0xff;
        let cases: [(&str, Vec<u8>, &[&str]); 7] = [
            ("intact", good.clone(), &["a=1", "b=22"]),
            ("empty", Vec::new(), &[]),
            ("count only", good[..4].to_vec(), &[]),
            ("cut in the data", good[..good.len() - 3].to_vec(), &["a=1"]),
            ("count past the end", huge_count, &[]),
            ("a length past the end", long_value, &["a=1"]),
            (
                "a name that is not UTF-8, as bytes",
                bad_name,
                &["a=1", "\u{fffd}=22"],
            ),
        ];
        for (name, bytes, want) in cases {
            assert_eq!(names(bytes), want, "{name}");
        }
    }
}
