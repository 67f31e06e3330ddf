//! A failure's cause, kept as the error value it was rather than its text, and still `Clone`.
//!
//! The catch-all variants of the error enums (`Error::Internal` here, the store's `Backend` and
//! the domain's `Internal` in the host) carried a `String`, so an I/O error's kind or a NATS
//! error's variant was gone by the time anything could act on it (a full disk looks like any
//! other failure). [`Cause`] keeps the value behind an `Arc` (errors are cloned into caches,
//! channels and cluster replies), shows the same text as before, and answers it through
//! [`Cause::find`]. A cause stands in for its error: its own `source()` is the error's source, so
//! a plain walk over `source()` passes the error's type by — use `find`.
//!
//! Display carries the whole text (what the logs and the API's `internal` detail print), and the
//! variants holding a `Cause` name it as their `#[source]`: a reporter that walks the chain sees
//! the cause's text again under the variant's, the price of never losing it from `{err}`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// Anything that is, or boxes into, an error: an error value, `anyhow`'s (wasmtime's) error, or
/// (where no error value exists, such as an invariant that did not hold) a message.
pub type Boxed = Box<dyn StdError + Send + Sync + 'static>;

/// The cause of a host-side failure: an error value, or one with what was being done.
#[derive(Clone)]
pub struct Cause(Arc<dyn StdError + Send + Sync + 'static>);

impl Cause {
    /// `err` itself (a message, when it is a string).
    pub fn new(err: impl Into<Boxed>) -> Cause {
        Cause(Arc::from(err.into()))
    }

    /// `err`, met while doing `what` (shown as `what: err`).
    pub fn context(what: impl Into<String>, err: impl Into<Boxed>) -> Cause {
        Cause(Arc::new(Context { what: what.into(), source: err.into() }))
    }

    /// The first error of type `T` in the chain, starting with the cause itself.
    pub fn find<T: StdError + 'static>(&self) -> Option<&T> {
        let mut next: Option<&(dyn StdError + 'static)> = Some(&*self.0);
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<T>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// Transparent: the cause's source is its error's source, so the chain has no extra link.
impl StdError for Cause {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

#[derive(Debug)]
struct Context {
    what: String,
    source: Boxed,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.what, self.source)
    }
}

impl StdError for Context {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_keeps_the_value_its_text_and_its_clones_share_it() {
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left");
        let cause = Cause::context("writing the cache entry", io);
        let copy = cause.clone();
        assert_eq!(copy.to_string(), "writing the cache entry: no space left");
        assert_eq!(copy.find::<std::io::Error>().map(|e| e.kind()), Some(std::io::ErrorKind::StorageFull));
        assert!(Cause::new("an invariant").find::<std::io::Error>().is_none());
    }
}
