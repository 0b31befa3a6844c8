//! The module's memory allocator: small blocks from free lists by size
//! class, everything else from the system allocator (Rust's `dlmalloc` in
//! the module).
//!
//! Why: a routed request allocates small blocks (the context, the header
//! map, the body, the strings of the decision) and frees them all when it
//! ends. Each of `dlmalloc`'s paths (bins, splits,
//! coalescing) is code that the request's callbacks pull into the CPU's
//! instruction cache on every request, after Envoy's own code has evicted
//! it. A free list is a load and a store. (`make bench-parts`' row "the
//! system allocator (`dlmalloc`) for every block" measures what it saves.)
//!
//! How:
//! - A request of at most [`LARGEST`] bytes, aligned to at most [`GRAIN`],
//!   takes a block of the smallest power of two that holds it, from 16
//!   bytes ([`GRAIN`]) up: from its class's free list, or else carved from
//!   a [`CHUNK`]-byte chunk that the system allocator gave.
//! - A freed block goes on its class's free list (the list's link is
//!   written in the block itself) and is never given back: the memory
//!   held is what the busiest moment needed, per class. A wasm module's
//!   memory never shrinks anyway.
//! - Anything larger, or more aligned (a large body, an 8 MiB image),
//!   goes to the system allocator, as before.
//!
//! The module runs one thread per VM, so the state sits in `Cell`s; on the
//! host (tests) the same allocator runs over `std::alloc::System` behind a
//! value, not as the global allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr::null_mut;

/// The smallest block, and the alignment every block has.
pub const GRAIN: usize = 16;
/// The largest block served from the free lists.
pub const LARGEST: usize = 8 * 1024;
/// How many size classes: 16, 32, ... 8192 bytes.
const CLASSES: usize = (LARGEST / GRAIN).trailing_zeros() as usize + 1;
/// What the system allocator is asked for when the current chunk is used up.
pub const CHUNK: usize = 64 * 1024;

/// The size class of a request: `None` when the system allocator serves it.
/// (Inlined: a few instructions, where a call of its own is code that each
/// callback that allocates would pull into the instruction cache again.)
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > LARGEST || layout.align() > GRAIN {
        return None;
    }
    let blocks = layout.size().max(1).div_ceil(GRAIN);
    Some(blocks.next_power_of_two().trailing_zeros() as usize)
}

/// The block size of a class.
const fn class_size(class: usize) -> usize {
    GRAIN << class
}

/// Free lists by size class over a system allocator `S`.
pub struct Pools<S> {
    system: S,
    /// The first free block of each class; each holds the next's address.
    free: [Cell<*mut u8>; CLASSES],
    /// The unused part of the current chunk: `next..end`.
    next: Cell<*mut u8>,
    end: Cell<*mut u8>,
}

// SAFETY: the module is single-threaded (wasm32-wasip1 has no threads: one
// VM per Envoy worker thread), so the `Cell`s are never shared between
// threads. (On the host a `Pools` is a test's local value, never `Sync`.)
#[cfg(target_arch = "wasm32")]
unsafe impl<S: Sync> Sync for Pools<S> {}

impl<S> Pools<S> {
    pub const fn new(system: S) -> Pools<S> {
        Pools {
            system,
            free: [const { Cell::new(null_mut()) }; CLASSES],
            next: Cell::new(null_mut()),
            end: Cell::new(null_mut()),
        }
    }
}

impl<S: GlobalAlloc> Pools<S> {
    /// A block of `class` carved from the current chunk, or from a new one.
    ///
    /// # Safety
    /// `class < CLASSES`.
    unsafe fn carve(&self, class: usize) -> *mut u8 {
        let size = class_size(class);
        let next = self.next.get();
        if (self.end.get() as usize) - (next as usize) >= size {
            self.next.set(next.add(size));
            return next;
        }
        // The rest of this chunk (less than `size`) is left unused.
        // SAFETY: CHUNK and GRAIN make a valid layout (non-zero, power of two).
        let chunk = self
            .system
            .alloc(Layout::from_size_align_unchecked(CHUNK, GRAIN));
        if chunk.is_null() {
            return null_mut();
        }
        self.next.set(chunk.add(size));
        self.end.set(chunk.add(CHUNK));
        chunk
    }
}

// SAFETY: a block handed out is `class_size` bytes (at least the request),
// aligned to GRAIN (chunks are, and every class is a multiple of GRAIN), and
// belongs to nobody else until it is freed; blocks of the system allocator
// go back to it, by the same test on the layout.
unsafe impl<S: GlobalAlloc> GlobalAlloc for Pools<S> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return self.system.alloc(layout);
        };
        let head = self.free[class].get();
        if head.is_null() {
            return self.carve(class);
        }
        // A free block's first bytes hold the next free block's address.
        self.free[class].set(head.cast::<*mut u8>().read());
        head
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return self.system.dealloc(ptr, layout);
        };
        ptr.cast::<*mut u8>().write(self.free[class].get());
        self.free[class].set(ptr);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            // The system allocator knows when fresh memory is zero already.
            return self.system.alloc_zeroed(layout);
        }
        let ptr = self.alloc(layout);
        if !ptr.is_null() {
            ptr.write_bytes(0, layout.size());
        }
        ptr
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller promises `new_size`, rounded up to the
        // alignment, does not overflow `isize`.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (class_of(layout), class_of(new_layout)) {
            (None, None) => self.system.realloc(ptr, layout, new_size),
            (Some(old), Some(new)) if old == new => ptr,
            _ => {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    ptr.copy_to_nonoverlapping(moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static POOLS: Pools<std::alloc::System> = Pools::new(std::alloc::System);

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn a_request_takes_the_smallest_class_that_holds_it() {
        struct Case {
            name: &'static str,
            size: usize,
            align: usize,
            want: Option<usize>,
        }
        let cases = [
            Case {
                name: "empty",
                size: 0,
                align: 1,
                want: Some(0),
            },
            Case {
                name: "one byte",
                size: 1,
                align: 1,
                want: Some(0),
            },
            Case {
                name: "a grain",
                size: 16,
                align: 8,
                want: Some(0),
            },
            Case {
                name: "a grain and a byte",
                size: 17,
                align: 1,
                want: Some(1),
            },
            Case {
                name: "32",
                size: 32,
                align: 4,
                want: Some(1),
            },
            Case {
                name: "33",
                size: 33,
                align: 1,
                want: Some(2),
            },
            Case {
                name: "1 KiB body",
                size: 1090,
                align: 1,
                want: Some(7),
            },
            Case {
                name: "the largest",
                size: LARGEST,
                align: 16,
                want: Some(CLASSES - 1),
            },
            Case {
                name: "one byte over",
                size: LARGEST + 1,
                align: 1,
                want: None,
            },
            Case {
                name: "aligned more than a grain",
                size: 8,
                align: 32,
                want: None,
            },
        ];
        for case in cases {
            let got = class_of(layout(case.size, case.align));
            assert_eq!(got, case.want, "{}", case.name);
            if let Some(class) = got {
                assert!(class_size(class) >= case.size, "{}", case.name);
            }
        }
        assert_eq!(class_size(CLASSES - 1), LARGEST);
    }

    #[test]
    fn a_freed_block_is_the_next_one_of_its_class() {
        let pools = Pools::new(System);
        unsafe {
            let a = pools.alloc(layout(24, 8));
            let b = pools.alloc(layout(20, 4));
            assert_ne!(a, b);
            pools.dealloc(a, layout(24, 8));
            // Same class (32 bytes), whatever the size within it.
            assert_eq!(pools.alloc(layout(32, 16)), a);
            // Another class does not take it.
            pools.dealloc(b, layout(20, 4));
            assert_ne!(pools.alloc(layout(8, 8)), b);
        }
    }

    #[test]
    fn realloc_keeps_the_block_within_its_class_and_the_bytes_across() {
        let pools = Pools::new(System);
        unsafe {
            let small = layout(40, 1);
            let p = pools.alloc(small);
            p.write_bytes(7, 40);
            assert_eq!(
                pools.realloc(p, small, 64),
                p,
                "40 and 64 are both class 64"
            );
            let grown = pools.realloc(p, layout(64, 1), 3000);
            assert_ne!(grown, p);
            assert!((0..40).all(|i| *grown.add(i) == 7));
            // From a class to the system allocator and back.
            let large = pools.realloc(grown, layout(3000, 1), LARGEST * 4);
            assert!((0..40).all(|i| *large.add(i) == 7));
            let back = pools.realloc(large, layout(LARGEST * 4, 1), 16);
            assert!((0..16).all(|i| *back.add(i) == 7));
            pools.dealloc(back, layout(16, 1));
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_even_when_reused() {
        let pools = Pools::new(System);
        unsafe {
            let l = layout(100, 4);
            let p = pools.alloc(l);
            p.write_bytes(0xff, 100);
            pools.dealloc(p, l);
            let z = pools.alloc_zeroed(l);
            assert_eq!(z, p);
            assert!((0..100).all(|i| *z.add(i) == 0));
            let big = layout(LARGEST * 2, 8);
            let zb = pools.alloc_zeroed(big);
            assert!((0..big.size()).all(|i| *zb.add(i) == 0));
            pools.dealloc(zb, big);
        }
    }

    /// Many blocks of every class and beyond, live at once and freed in a
    /// scrambled order, several times over: each keeps its own bytes, is
    /// aligned, and overlaps no other.
    #[test]
    fn live_blocks_never_overlap_and_keep_their_bytes() {
        let pools = Pools::new(System);
        let mut seed = 0x2545_f491_u32;
        let mut random = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed as usize
        };
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        for step in 0..20_000usize {
            if live.len() < 300 && random() % 3 != 0 {
                let size = match random() % 10 {
                    0 => LARGEST + random() % 5000,
                    1..=3 => random() % 64,
                    _ => random() % LARGEST,
                };
                let align = [1, 2, 4, 8, 16, 32][random() % 6];
                let l = layout(size, align);
                let p = unsafe { pools.alloc(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "alignment {align}");
                let fill = step as u8;
                unsafe { p.write_bytes(fill, size) };
                live.push((p, l, fill));
            } else if !live.is_empty() {
                let (p, l, fill) = live.swap_remove(random() % live.len());
                assert!(
                    (0..l.size()).all(|i| unsafe { *p.add(i) } == fill),
                    "a block's bytes changed while it was live"
                );
                unsafe { pools.dealloc(p, l) };
            }
            if step % 1000 == 0 {
                let mut spans: Vec<(usize, usize)> = live
                    .iter()
                    .map(|(p, l, _)| (*p as usize, *p as usize + l.size()))
                    .collect();
                spans.sort_unstable();
                assert!(
                    spans.windows(2).all(|w| w[0].1 <= w[1].0),
                    "two live blocks overlap"
                );
            }
        }
        for (p, l, _) in live {
            unsafe { pools.dealloc(p, l) };
        }
    }
}
