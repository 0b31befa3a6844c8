//! Where Envoy calls in: the contexts it creates (a root context per plugin
//! configuration, one per request), each callback delivered to its context,
//! and, in the module, the exported functions of the ABI and the logger.
//!
//! A callback for a context that does not exist (one whose creation found
//! no configuration) lets the request through; nothing here panics.

use super::abi::{self, Action};
use super::host::Host;
use super::{Router, RouterRoot};

/// Contexts by id, sorted: Envoy numbers contexts upwards, so a new one
/// goes at the end, and a lookup is a binary search. (A `BTreeMap`'s code
/// was 10 KB of the module.)
struct ById<T>(Vec<(u32, T)>);

impl<T> ById<T> {
    const fn new() -> ById<T> {
        ById(Vec::new())
    }

    fn at(&self, id: u32) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(key, _)| *key)
    }

    fn insert(&mut self, id: u32, value: T) {
        match self.at(id) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (id, value)),
        }
    }

    fn get(&self, id: u32) -> Option<&T> {
        self.at(id).ok().map(|i| &self.0[i].1)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut T> {
        self.at(id).ok().map(|i| &mut self.0[i].1)
    }

    fn remove(&mut self, id: u32) -> Option<T> {
        self.at(id).ok().map(|i| self.0.remove(i).1)
    }
}

/// The VM's contexts, by the ids Envoy gives them.
pub(super) struct Contexts<H: Host> {
    roots: ById<RouterRoot>,
    streams: ById<Box<Router<H>>>,
}

impl<H: Host> Contexts<H> {
    pub(super) const fn new() -> Contexts<H> {
        Contexts {
            roots: ById::new(),
            streams: ById::new(),
        }
    }

    /// `proxy_on_context_create`: a root context (`root_id` 0) or a
    /// request's, made by its root with `host`.
    pub(super) fn create(&mut self, id: u32, root_id: u32, host: impl FnOnce() -> H) {
        if root_id == 0 {
            self.roots.insert(id, RouterRoot::default());
            return;
        }
        match self.roots.get(root_id).and_then(|root| root.create(id, host())) {
            Some(router) => {
                self.streams.insert(id, Box::new(router));
            }
            None => log::warn!(
                "gemini-router: request {id} has no configured root context {root_id}: passed through"
            ),
        }
    }

    /// `proxy_on_delete`: whether `id` was a root context.
    pub(super) fn delete(&mut self, id: u32) -> bool {
        self.streams.remove(id).is_none() && self.roots.remove(id).is_some()
    }

    /// `proxy_on_configure`: whether the configuration was accepted.
    pub(super) fn configure(&mut self, id: u32, size: usize) -> bool {
        self.roots
            .get_mut(id)
            .is_some_and(|root| root.configure(size))
    }

    /// `proxy_on_tick`.
    pub(super) fn tick(&mut self, id: u32) {
        if let Some(root) = self.roots.get_mut(id) {
            root.tick();
        }
    }

    /// The request context `id`, if there is one.
    pub(super) fn stream(&mut self, id: u32) -> Option<&mut Router<H>> {
        self.streams.get_mut(id).map(Box::as_mut)
    }

    /// Runs `callback` on request context `id`; `Continue` without one.
    pub(super) fn on(
        &mut self,
        id: u32,
        callback: impl FnOnce(&mut Router<H>) -> Action,
    ) -> Action {
        self.stream(id).map_or(Action::Continue, callback)
    }

    /// Gives root context `id` a configuration (the tests' stand-in for
    /// reading the plugin configuration from the host).
    #[cfg(test)]
    pub(super) fn set_root_config(
        &mut self,
        id: u32,
        config: std::rc::Rc<crate::config::Config>,
        metrics: std::rc::Rc<super::metrics::Metrics>,
    ) {
        if let Some(root) = self.roots.get_mut(id) {
            root.config = Some(config);
            root.metrics = Some(metrics);
        }
    }

    /// The request context waiting for the callout answer `token`.
    pub(super) fn awaiting(&self, token: u32) -> Option<u32> {
        self.streams
            .0
            .iter()
            .find(|(_, router)| router.awaits(token))
            .map(|(id, _)| *id)
    }
}

/// Forwards the `log` crate's records to Envoy's log.
struct HostLog;

impl log::Log for HostLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let _ = match record.args().as_str() {
            Some(text) => abi::log(record.level(), text),
            None => abi::log(record.level(), &record.args().to_string()),
        };
    }

    fn flush(&self) {}
}

static HOST_LOG: HostLog = HostLog;

/// Sends the `log` crate's records to Envoy, at Envoy's level for the
/// filter's component (re-read on every tick, see `RouterRoot::tick`).
pub(super) fn follow_host_log_level() {
    if let Ok(level) = abi::log_level() {
        log::set_max_level(level);
    }
}

pub mod exports {
    //! The ABI's exports (by these names in the module): each a thin call
    //! into the VM's [`Contexts`]. A callback that arrives while another
    //! runs (the host calling back from inside a host call) is refused as
    //! if its context did not exist, instead of panicking on the busy
    //! state.
    //!
    //! The callbacks whose default is what the filter would answer are not
    //! exported, so Envoy does not call into the VM for them:
    //! `proxy_on_vm_start` and `proxy_on_done` (true), `proxy_on_log`
    //! (nothing), and those of gRPC, network filters, queues and foreign
    //! functions, which an HTTP filter that makes no gRPC call never gets.
    //! Each request then costs one call into the VM fewer than with the
    //! SDK's exports, which included `proxy_on_done` and `proxy_on_log`.

    use super::super::host::Proxy;
    use super::{abi, Action, Contexts, HOST_LOG};
    use std::cell::RefCell;

    thread_local! {
        static CONTEXTS: RefCell<Contexts<Proxy>> = const { RefCell::new(Contexts::new()) };
    }

    fn with<R>(busy: R, f: impl FnOnce(&mut Contexts<Proxy>) -> R) -> R {
        CONTEXTS.with(|contexts| match contexts.try_borrow_mut() {
            Ok(mut contexts) => f(&mut contexts),
            Err(_) => {
                log::error!("gemini-router: a callback arrived during another: not handled");
                busy
            }
        })
    }

    #[cfg(all(target_arch = "wasm32", not(test)))]
    extern "C" {
        fn __wasm_call_ctors();
    }

    /// The module's start, before any other call.
    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn _initialize() {
        // SAFETY: the linker's constructor list, run once, before anything
        // else, as a WASI reactor's `_initialize` must.
        #[cfg(all(target_arch = "wasm32", not(test)))]
        unsafe {
            __wasm_call_ctors()
        };
        if log::set_logger(&HOST_LOG).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_abi_version_0_2_1() {}

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
        abi::allocate(size)
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_context_create(id: u32, root_id: u32) {
        with((), |c| c.create(id, root_id, || Proxy));
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_configure(id: u32, size: usize) -> u32 {
        u32::from(with(false, |c| c.configure(id, size)))
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_tick(id: u32) {
        with((), |c| c.tick(id));
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_request_headers(id: u32, headers: usize, end: u32) -> Action {
        with(Action::Continue, |c| {
            c.on(id, |r| r.on_http_request_headers(headers, end != 0))
        })
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_request_body(id: u32, size: usize, end: u32) -> Action {
        with(Action::Continue, |c| {
            c.on(id, |r| r.on_http_request_body(size, end != 0))
        })
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_request_trailers(id: u32, trailers: usize) -> Action {
        with(Action::Continue, |c| {
            c.on(id, |r| r.on_http_request_trailers(trailers))
        })
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_response_headers(id: u32, headers: usize, end: u32) -> Action {
        with(Action::Continue, |c| {
            c.on(id, |r| r.on_http_response_headers(headers, end != 0))
        })
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_response_body(id: u32, size: usize, end: u32) -> Action {
        with(Action::Continue, |c| {
            c.on(id, |r| r.on_http_response_body(size, end != 0))
        })
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_response_trailers(id: u32, trailers: usize) -> Action {
        with(Action::Continue, |c| {
            c.on(id, |r| r.on_http_response_trailers(trailers))
        })
    }

    /// A callout's answer arrives on the root context: it goes to the
    /// request waiting for its token, made the effective context first so
    /// that resuming the response resumes that request's.
    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_http_call_response(
        _root_id: u32,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        with((), |c| {
            let Some(id) = c.awaiting(token) else {
                return;
            };
            if abi::set_effective_context(id).is_ok() {
                if let Some(router) = c.stream(id) {
                    router.on_http_call_response(body_size);
                }
            }
        });
    }

    #[cfg_attr(all(target_arch = "wasm32", not(test)), no_mangle)]
    pub extern "C" fn proxy_on_delete(id: u32) {
        // A plugin going away hands over what its requests counted.
        if with(false, |c| c.delete(id)) {
            super::super::host::flush_counters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ById;

    #[test]
    fn contexts_by_id_stay_sorted_whatever_the_order() {
        let mut by_id = ById::new();
        for id in [5, 1, 9, 3, 7] {
            by_id.insert(id, id * 10);
        }
        let ids: Vec<u32> = by_id.0.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 3, 5, 7, 9]);
        assert_eq!(by_id.get(7), Some(&70));
        assert_eq!(by_id.get(4), None);
        by_id.insert(7, 71);
        assert_eq!(by_id.get(7), Some(&71), "replaced, not added");
        assert_eq!(by_id.0.len(), 5);
        if let Some(v) = by_id.get_mut(3) {
            *v = 31;
        }
        assert_eq!(by_id.remove(3), Some(31));
        assert_eq!(by_id.remove(3), None);
        assert_eq!(by_id.remove(0), None);
        let ids: Vec<u32> = by_id.0.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 5, 7, 9]);
    }
}
