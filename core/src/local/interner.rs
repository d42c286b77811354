//! Interned names: strings by small id, with a use count, so the hot path
//! hashes `u32`s instead of strings. A name is freed when its last user goes
//! and its id is reused, so a long-running node does not grow with churn.

use rustc_hash::FxHashMap;

/// Ids stay below this, so [`super::key::NO_USER`] and the packed
/// [`super::key::Key::CLIENTS`] never collide with a real id.
const MAX_ID: u32 = u32::MAX - 1;

/// Strings by id, with a use count; ids of freed strings are reused.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    /// Id by name, for the live names.
    ids: FxHashMap<Box<str>, u32>,
    /// Name by id (empty for a free id).
    names: Vec<Box<str>>,
    /// Use count by id.
    uses: Vec<u32>,
    /// Ids free for reuse.
    free: Vec<u32>,
}

impl Interner {
    /// The id of `name`, interning it (with no use yet) when new.
    #[inline]
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = name.into();
                id
            }
            None => {
                self.names.push(name.into());
                self.uses.push(0);
                (self.names.len() - 1) as u32
            }
        };
        assert!(id < MAX_ID, "too many names");
        self.ids.insert(name.into(), id);
        id
    }

    /// The id of `name` if it is interned.
    #[inline]
    pub(crate) fn lookup(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of a live id.
    #[inline]
    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// One more user of `id`.
    #[inline]
    pub(crate) fn acquire(&mut self, id: u32) {
        self.uses[id as usize] += 1;
    }

    /// One user of `id` fewer; the last one frees the name and the id.
    #[inline]
    pub(crate) fn release(&mut self, id: u32) {
        let uses = &mut self.uses[id as usize];
        *uses -= 1;
        if *uses == 0 {
            let name = std::mem::take(&mut self.names[id as usize]);
            self.ids.remove(&name);
            self.free.push(id);
        }
    }

    /// How many names are interned (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_keeps_its_id_while_used_and_is_freed_by_the_last_release() {
        let mut i = Interner::default();
        let a = i.intern("a");
        assert_eq!(i.intern("a"), a);
        i.acquire(a);
        i.acquire(a);
        i.release(a);
        assert_eq!(i.lookup("a"), Some(a));
        assert_eq!(i.name(a), "a");
        i.release(a);
        assert_eq!(i.lookup("a"), None);
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn freed_ids_are_reused_for_new_names() {
        let mut i = Interner::default();
        let a = i.intern("a");
        let b = i.intern("b");
        assert_ne!(a, b);
        i.acquire(a);
        i.release(a);
        let c = i.intern("c");
        assert_eq!(c, a, "the freed id comes back");
        assert_eq!(i.name(c), "c");
        assert_eq!(i.lookup("b"), Some(b));
        assert_eq!(i.len(), 2);
    }
}
